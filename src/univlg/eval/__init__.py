"""Benchmark metrics as pure functions over predictions (no model, no file reading).

- :mod:`univlg.eval.grounding`: 3D grounding Acc@0.25/0.5/0.75 (SR3D, NR3D, ScanRefer, synthetic), GT-proposal
  accuracy; :mod:`univlg.eval.breakdowns`: unique/multiple, easy/hard, view-dependent, per-relation subsets.
- :mod:`univlg.eval.qa`: ScanQA / SQA3D exact match, refined EM, per-type EM; :mod:`univlg.eval.captions`:
  BLEU-1..4, METEOR, ROUGE-L, CIDEr as means of per-item pycocoevalcap scores.
- :mod:`univlg.eval.refcoco`: RefCOCO/+/g Acc@0.5 of the mask's box, mask mIoU and cIoU.
- :mod:`univlg.eval.instance_ap`: ScanNet(200) instance AP / AP50 / AP25, head/common/tail.

Each module's docstring states the protocol; docs/benchmarks.md says where we match the official numbers and
where we deliberately differ.
"""
