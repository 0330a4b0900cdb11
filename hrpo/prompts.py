"""How a question becomes a model's prompt: the prompt formats, the answer-format hint and the system prompt.

A task gives the question; the model's prompt format (recorded in every checkpoint as TrainConfig.prompt_format)
decides what the model is shown, so a visitor's plain question in the app is asked as the model was trained:
    plain   the question as given
    hint    the question, then ANSWER_HINT (unless it already ends with it: the `arith` task's questions carry it)
then HybridModel.encode wraps it in the chat template with SYSTEM_PROMPT, or, for a base model without a chat
template (Gemma 3 270M), in `completion_prompt`: SYSTEM_PROMPT, one worked example ending in the answer line,
then "Question: ...\nAnswer:" for the model to continue (the answer-line stop rule ends it after its answer).
Test: pytest tests/test_prompts.py
"""

# The wording that lets SmolLM2-135M write '####' exactly once (studies/calibrate_arith.py): plain
# "Give the final answer after ####." makes it repeat '#### n' lines until max_new_tokens.
ANSWER_HINT = "\n\nFormat:\n<one line of working>\n#### <number>"
SYSTEM_PROMPT = ("You are a helpful assistant. Think about the problem step by step, then give the "
                 "final answer after '####', like this: reasoning #### answer.")
PROMPT_FORMATS = ("hint", "plain")
ONE_SHOT = ("Ana has 9 pens. She buys 4 more. How many pens does she have now?", "Ana has 9 + 4 = 13 pens.\n#### 13")


def check_prompt(prompt, max_chars: int | None = None) -> None:
    """ValueError (one line) unless `prompt` is a non-empty string of valid Unicode within max_chars; the CLI
    and the app check a visitor's prompt here (the decoders then check its tokens against the context)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty")
    if max_chars is not None and len(prompt) > max_chars:
        raise ValueError(f"the prompt is too long ({len(prompt)} characters; the limit here is {max_chars})")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in prompt):     # argv bytes that are not UTF-8 arrive as these too
        raise ValueError("the prompt contains a lone surrogate (not valid UTF-8 / Unicode); paste it again as text")


def completion_prompt(question: str, system: str = SYSTEM_PROMPT, example: tuple[str, str] | None = ONE_SHOT) -> str:
    """The prompt of a model without a chat template: the instruction, a worked example (None: none), the question."""
    shot = f"Question: {example[0]}\nAnswer: {example[1]}\n\n" if example else ""
    return f"{system}\n\n{shot}Question: {question}\nAnswer:"


def present(question: str, prompt_format: str) -> str:
    """The user message for `question` in `prompt_format` (see the module doc)."""
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"unknown prompt format {prompt_format!r}; use one of {', '.join(PROMPT_FORMATS)}")
    if prompt_format == "hint" and not question.endswith(ANSWER_HINT):
        return question + ANSWER_HINT
    return question


def recorded_format(train: dict) -> str:
    """The prompt format a checkpoint was trained with, from its train config.  Checkpoints from before the
    field was recorded were trained on the `arith` task, whose questions end with the hint: "hint" for those,
    "plain" for any other task."""
    if "prompt_format" in train:
        return train["prompt_format"]
    return "hint" if str(train.get("task", "")).startswith("arith") else "plain"
