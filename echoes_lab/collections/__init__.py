"""Museum collections: records from other institutions' metadata, and their dates.

* :mod:`echoes_lab.collections.records` — one normalised schema and the ``df.records`` accessor
  (quality, timeline, facets);
* :mod:`echoes_lab.collections.metadata` — the readers of museum metadata formats (CSV exports,
  OAI-PMH Dublin Core, LIDO, IIIF Presentation, Europeana EDM), XML parsed safely;
* :mod:`echoes_lab.collections.dates` — display dates in several languages to year intervals
  and EDTF.
"""
