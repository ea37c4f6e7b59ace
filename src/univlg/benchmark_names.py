"""The benchmarks ``univlg eval`` evaluates, by name (kept light: the command line lists them without torch)."""

GROUNDING_BENCHMARKS = ("sr3d", "nr3d", "scanrefer", "synthetic")
QA_BENCHMARKS = ("scanqa", "sqa3d")
BENCHMARKS = (*GROUNDING_BENCHMARKS, *QA_BENCHMARKS, "refcoco", "scannet200")
