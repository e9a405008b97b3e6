"""A listening test on a run's conversions, by the Voice Conversion Challenge protocol (``vc listen``).

- :mod:`vc.listen.protocol`: the test definition (systems, blind ids, trials with audio hashes, the order
  per rater), built from the convert, baselines and corpus stages' folders.
- :mod:`vc.listen.playback`: loudness-matched copies of the stimuli for the browser.
- :mod:`vc.listen.store`: the ratings in SQLite (WAL), rater tokens, exports to new files.
- :mod:`vc.listen.app`: the web app (FastAPI on uvicorn) raters use.
- :mod:`vc.listen.cli`: ``vc listen build | invite | revoke | status | serve | export``.
- :mod:`vc.listen.ratings`: exported ratings -> MOS and similarity per system, intervals, differences.
"""
