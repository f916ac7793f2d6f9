"""The research agent, in three rooms, each importing only the ones below it:

    research/  the run itself: the loop (loop.py) and its state (state.py), what each round
               searches (rounds.py, planner.py, bridges.py), the privacy boundary
               (privacy.py), evidence (evidence.py), the answer (writer.py, reader.py,
               verify.py, checks.py), the event stream (events.py), and what joins a run to
               the store (recorder.py, assistant.py)
    tools/     what touches the outside world: web search (search.py), fetching (fetch.py,
               addresses.py, extract.py), the user's files (library.py), and the tools a
               run calls (toolbox.py)
    models/    the model runtime: the LLM protocol (llm.py), llama.cpp (llama.py, decoding.py,
               turns.py), a server (http_llm.py), chat templates (chat_format.py), model files
               (files.py), which model to open (catalog.py) and the registry (registry.py)

and a few modules all three share: text.py, citations.py, prompts.py, retry.py, errors.py.
"""
