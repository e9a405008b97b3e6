"""The generated report: results loaded from the evaluation tree, compared, and written section by section.

- :mod:`vc.report.results`: what each system's evaluation left (:class:`~vc.report.results.SystemResult`);
- :mod:`vc.report.compare`: paired comparisons and ``metrics.json``;
- :mod:`vc.report.sections` and :mod:`vc.report.perceptual`: one function per section, each returning its
  lines from the data it is given;
- :mod:`vc.report.build`: the sections in order, written atomically, and the check CI runs;
- :mod:`vc.report.markdown`, :mod:`vc.report.plots`: tables and figures.
"""
