"""Self-contained HTML 3D viewer: points, grounded masks and boxes in one file that opens offline in a browser.

See docs/viewer.md. :func:`write_scene_html` takes plain arrays; :func:`scene_html` takes a
:class:`~univlg.data.scene.Scene` and ``UniVLG.ground`` results; :mod:`univlg.viz.grounding_file` reads and
writes grounding results as JSON + ``.npy``.
"""

from univlg.viz.grounding_file import read_groundings, write_groundings
from univlg.viz.html import PageSummary, write_scene_html
from univlg.viz.scene_view import scene_html, sensor_cloud

__all__ = ["PageSummary", "read_groundings", "scene_html", "sensor_cloud", "write_groundings", "write_scene_html"]
