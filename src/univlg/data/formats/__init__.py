"""On-disk dataset formats: one module per format, each reading records (and writing them where useful).

Language formats (ReferIt3D CSV, ScanRefer/ScanEnts3D/Locate3D JSON, ScanQA, SQA3D, RefCOCO + COCO) read into
the records of :mod:`univlg.data.records` and write them back, so the synthetic world and real data share one
code path. Readers raise :class:`~univlg.errors.FormatError` naming the file, the row and the field.
See docs/formats.md.
"""
