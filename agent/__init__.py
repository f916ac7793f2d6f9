"""The research agent: planner, executors, tools, LLM backends and the research loop."""
