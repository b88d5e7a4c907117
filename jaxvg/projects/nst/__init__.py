"""NST: null-space tuning of a frozen model for mixed-quality input (arXiv 2606.03539).

Only the abstract is public: every choice beyond it is a named field of `config.NSTConfig`.
"""
