"""Role labels where a role's name is more than one token: SmolLM2's tokenizer spells
"assistant" as two (Qwen2.5 as one), so the labeller matches role names as token runs."""

import os

import pytest

from hypolab.audit.sequences import ChatIds, label_roles

pytestmark = pytest.mark.skipif(os.environ.get("HYPOLAB_SKIP_SMOLLM") == "1", reason="HYPOLAB_SKIP_SMOLLM=1")


@pytest.fixture(scope="module")
def smollm_tokenizer():
    from transformers import AutoTokenizer

    from hypolab.trainer.smollm import model_dir

    return AutoTokenizer.from_pretrained(model_dir())


def test_a_two_token_role_name_labels_its_whole_block(smollm_tokenizer):
    tok = smollm_tokenizer
    assert len(tok.encode("assistant", add_special_tokens=False)) == 2  # else this test proves nothing
    messages = [{"role": "system", "content": "Add."}, {"role": "user", "content": "12+30"},
                {"role": "assistant", "content": "42"}, {"role": "user", "content": "1+1"},
                {"role": "assistant", "content": "2"}]
    ids = tok.apply_chat_template(messages, tokenize=True)
    labelled = label_roles(ids, ChatIds.of(tok))
    assert [role for role, _, _ in labelled.blocks] == ["system", "user", "assistant", "user", "assistant"]
    assert labelled.missing_headers == 0 and labelled.dropped_newlines == 0
    for (role, start, end), message in zip(labelled.blocks, messages):
        assert set(labelled.roles[start:end]) == {role}
        assert message["content"] in tok.decode(ids[start:end])
