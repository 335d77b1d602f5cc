"""The offline Qwen2.5 tokenizer: special ids, known encodings, the exact chat rendering."""

import pytest

from hypolab.audit.tokenizer import QWEN25_ADDED_TOKENS, TokenizerError, load_tokenizer


def test_special_token_ids(tok):
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 151643
    assert tok.convert_tokens_to_ids("<|im_start|>") == 151644
    assert tok.convert_tokens_to_ids("<|im_end|>") == 151645
    assert tok.convert_tokens_to_ids("<tool_call>") == 151657
    assert tok.convert_tokens_to_ids("</tool_call>") == 151658
    assert len(tok) == 151643 + len(QWEN25_ADDED_TOKENS)
    assert tok.eos_token_id == 151645 and tok.pad_token_id == 151643


def test_known_encodings(tok):
    assert tok.encode("Hello world") == [9707, 1879]
    assert tok.encode("<|im_start|>system\n") == [151644, 8948, 198]
    assert tok.encode("user assistant") == [872, 17847]
    assert tok.encode("Hello 123") == [9707, 220, 16, 17, 18]  # Qwen2 splits digits one by one
    assert tok.decode(tok.encode("naïve café\n\n")) == "naïve café\n\n"


TOOLS = [{"type": "function", "function": {"name": "python", "description": "run",
                                           "parameters": {"type": "object", "properties": {"code": {"type": "string"}}}}}]


def test_chat_rendering_with_tools_and_consecutive_tool_responses(tok):
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "id": "c1", "function": {"name": "python", "arguments": {"code": "print(2+2)"}}}]},
        {"role": "tool", "content": "4", "tool_call_id": "c1"},
        {"role": "tool", "content": "5", "tool_call_id": "c2"},
        {"role": "assistant", "content": "\\boxed{4}"},
    ]
    expected = (
        '<|im_start|>system\nS\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n'
        'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n'
        '{"type": "function", "function": {"name": "python", "description": "run", "parameters": {"type": "object", '
        '"properties": {"code": {"type": "string"}}}}}\n</tools>\n\nFor each function call, return a json object with '
        'function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, '
        '"arguments": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n'
        '<|im_start|>assistant\n<tool_call>\n{"name": "python", "arguments": {"code": "print(2+2)"}}\n</tool_call><|im_end|>\n'
        '<|im_start|>user\n<tool_response>\n4\n</tool_response>\n<tool_response>\n5\n</tool_response><|im_end|>\n'
        '<|im_start|>assistant\n\\boxed{4}<|im_end|>\n'
    )
    assert tok.apply_chat_template(messages, tools=TOOLS, tokenize=False) == expected


def test_default_system_prompt_and_generation_prompt(tok):
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_unknown_tokenizer_is_one_clear_error(tmp_path):
    with pytest.raises(TokenizerError, match="--tokenizer qwen2.5"):
        load_tokenizer(str(tmp_path / "missing"))
