"""Seeded generators of the demo datasets installed into the shared folder.

Each module here (``collection``, ``climate``, ``colour``, ``spectral``) exposes
``write(out_dir, size="small", seed=...) -> list[dict]`` which writes its files
deterministically (the same bytes for the same seed and size) and returns catalogue entries.
"""
