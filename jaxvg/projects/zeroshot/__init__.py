"""Zero-shot STVG with a frozen multimodal LLM (grounding-token attention, DSTH with LRA, TAS)."""
