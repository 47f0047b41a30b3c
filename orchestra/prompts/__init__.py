"""System prompts from MLflow's Prompt Registry, referenced by routing rules.

routing.rules[].system_prompt: prompts:/math-system@production
"""

from orchestra.prompts.references import SYSTEM_PROMPT_TAG, resolve_prompt_references, rule_system_prompt

__all__ = ["SYSTEM_PROMPT_TAG", "resolve_prompt_references", "rule_system_prompt"]
