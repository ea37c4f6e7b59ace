"""ScanNet label sets: ``scannetv2-labels.combined.tsv`` (raw category -> NYU40 / ScanNet200) and class lists.

The tsv has one row per raw category (the labels written in ``.aggregation.json``): ``id`` is the id of its
cleaned ``category`` (several raw categories share one, e.g. "stack of chairs" -> 2 "chair"), ``nyu40id`` /
``nyu40class`` its NYU40 class. ScanNet200 labels a point with the ``id`` of its raw category when that id is one
of the 200 benchmark ids (:data:`SCANNET200_CLASS_IDS`), else 0 (unlabelled). The ScanNet (20-class) benchmark
uses NYU40 ids restricted to :data:`SCANNET20_CLASS_IDS`.

Class lists and the head / common / tail frequency splits are the ScanNet200 benchmark's
(``BenchmarkScripts/ScanNet200/scannet200_constants.py`` and ``scannet200_splits.py``, Rozenberszki et al. 2022).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from univlg.data.formats.fields import Where, as_int, as_str
from univlg.errors import FormatError

SCANNET20_CLASS_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET20_CLASS_NAMES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture", "counter",
    "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink", "bathtub", "otherfurniture",
)  # fmt: skip
SCANNET200_CLASS_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24, 26, 27, 28, 29, 31, 32, 33, 34, 35,
    36, 38, 39, 40, 41, 42, 44, 45, 46, 47, 48, 49, 50, 51, 52, 54, 55, 56, 57, 58, 59, 62, 63, 64, 65, 66, 67, 68, 69,
    70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 82, 84, 86, 87, 88, 89, 90, 93, 95, 96, 97, 98, 99, 100, 101, 102, 103,
    104, 105, 106, 107, 110, 112, 115, 116, 118, 120, 121, 122, 125, 128, 130, 131, 132, 134, 136, 138, 139, 140, 141,
    145, 148, 154, 155, 156, 157, 159, 161, 163, 165, 166, 168, 169, 170, 177, 180, 185, 188, 191, 193, 195, 202, 208,
    213, 214, 221, 229, 230, 232, 233, 242, 250, 261, 264, 276, 283, 286, 300, 304, 312, 323, 325, 331, 342, 356, 370,
    392, 395, 399, 408, 417, 488, 540, 562, 570, 572, 581, 609, 748, 776, 1156, 1163, 1164, 1165, 1166, 1167, 1168,
    1169, 1170, 1171, 1172, 1173, 1174, 1175, 1176, 1178, 1179, 1180, 1181, 1182, 1183, 1184, 1185, 1186, 1187, 1188,
    1189, 1190, 1191,
)  # fmt: skip
SCANNET200_CLASS_NAMES = (
    "wall", "chair", "floor", "table", "door", "couch", "cabinet", "shelf", "desk", "office chair", "bed", "pillow",
    "sink", "picture", "window", "toilet", "bookshelf", "monitor", "curtain", "book", "armchair", "coffee table", "box",
    "refrigerator", "lamp", "kitchen cabinet", "towel", "clothes", "tv", "nightstand", "counter", "dresser", "stool",
    "cushion", "plant", "ceiling", "bathtub", "end table", "dining table", "keyboard", "bag", "backpack",
    "toilet paper", "printer", "tv stand", "whiteboard", "blanket", "shower curtain", "trash can", "closet", "stairs",
    "microwave", "stove", "shoe", "computer tower", "bottle", "bin", "ottoman", "bench", "board", "washing machine",
    "mirror", "copier", "basket", "sofa chair", "file cabinet", "fan", "laptop", "shower", "paper", "person",
    "paper towel dispenser", "oven", "blinds", "rack", "plate", "blackboard", "piano", "suitcase", "rail", "radiator",
    "recycling bin", "container", "wardrobe", "soap dispenser", "telephone", "bucket", "clock", "stand", "light",
    "laundry basket", "pipe", "clothes dryer", "guitar", "toilet paper holder", "seat", "speaker", "column", "bicycle",
    "ladder", "bathroom stall", "shower wall", "cup", "jacket", "storage bin", "coffee maker", "dishwasher",
    "paper towel roll", "machine", "mat", "windowsill", "bar", "toaster", "bulletin board", "ironing board",
    "fireplace", "soap dish", "kitchen counter", "doorframe", "toilet paper dispenser", "mini fridge",
    "fire extinguisher", "ball", "hat", "shower curtain rod", "water cooler", "paper cutter", "tray", "shower door",
    "pillar", "ledge", "toaster oven", "mouse", "toilet seat cover dispenser", "furniture", "cart",
    "storage container", "scale", "tissue box", "light switch", "crate", "power outlet", "decoration", "sign",
    "projector", "closet door", "vacuum cleaner", "candle", "plunger", "stuffed animal", "headphones", "dish rack",
    "broom", "guitar case", "range hood", "dustpan", "hair dryer", "water bottle", "handicap bar", "purse", "vent",
    "shower floor", "water pitcher", "mailbox", "bowl", "paper bag", "alarm clock", "music stand", "projector screen",
    "divider", "laundry detergent", "bathroom counter", "object", "bathroom vanity", "closet wall", "laundry hamper",
    "bathroom stall door", "ceiling light", "trash bin", "dumbbell", "stair rail", "tube", "bathroom cabinet",
    "cd case", "closet rod", "coffee kettle", "structure", "shower head", "keyboard piano", "case of water bottles",
    "coat rack", "storage organizer", "folded chair", "fire alarm", "power strip", "calendar", "poster",
    "potted plant", "luggage", "mattress",
)  # fmt: skip
SCANNET200_HEAD = frozenset({
    "tv stand", "curtain", "blinds", "shower curtain", "bookshelf", "tv", "kitchen cabinet", "pillow", "lamp",
    "dresser", "monitor", "object", "ceiling", "board", "stove", "closet wall", "couch", "office chair",
    "kitchen counter", "shower", "closet", "doorframe", "sofa chair", "mailbox", "nightstand", "washing machine",
    "picture", "book", "sink", "recycling bin", "table", "backpack", "shower wall", "toilet", "copier", "counter",
    "stool", "refrigerator", "window", "file cabinet", "chair", "wall", "plant", "coffee table", "stairs", "armchair",
    "cabinet", "bathroom vanity", "bathroom stall", "mirror", "blackboard", "trash can", "stair rail", "box", "towel",
    "door", "clothes", "whiteboard", "bed", "floor", "bathtub", "desk", "wardrobe", "clothes dryer", "radiator",
    "shelf",
})  # fmt: skip
SCANNET200_COMMON = frozenset({
    "cushion", "end table", "dining table", "keyboard", "bag", "toilet paper", "printer", "blanket", "microwave",
    "shoe", "computer tower", "bottle", "bin", "ottoman", "bench", "basket", "fan", "laptop", "person",
    "paper towel dispenser", "oven", "rack", "piano", "suitcase", "rail", "container", "telephone", "stand", "light",
    "laundry basket", "pipe", "seat", "column", "bicycle", "ladder", "jacket", "storage bin", "coffee maker",
    "dishwasher", "machine", "mat", "windowsill", "bulletin board", "fireplace", "mini fridge", "water cooler",
    "shower door", "pillar", "ledge", "furniture", "cart", "decoration", "closet door", "vacuum cleaner", "dish rack",
    "range hood", "projector screen", "divider", "bathroom counter", "laundry hamper", "bathroom stall door",
    "ceiling light", "trash bin", "bathroom cabinet", "structure", "storage organizer", "potted plant", "mattress",
})  # fmt: skip
SCANNET200_TAIL = frozenset(set(SCANNET200_CLASS_NAMES) - SCANNET200_HEAD - SCANNET200_COMMON)
# The ScanNet200 instance benchmark scores every class but the two "stuff" classes.
SCANNET200_INSTANCE_CLASS_NAMES = tuple(n for n in SCANNET200_CLASS_NAMES if n not in ("wall", "floor"))
SCANNET200_INSTANCE_CLASS_IDS = tuple(
    i for i, n in zip(SCANNET200_CLASS_IDS, SCANNET200_CLASS_NAMES, strict=True) if n not in ("wall", "floor")
)
SCANNET200_NAME_OF_ID = dict(zip(SCANNET200_CLASS_IDS, SCANNET200_CLASS_NAMES, strict=True))
_SCANNET200_ID_SET = frozenset(SCANNET200_CLASS_IDS)
REQUIRED_COLUMNS = ("id", "raw_category", "category", "nyu40id", "nyu40class")


def scannet200_split(name: str) -> str:
    """The ScanNet200 frequency split of a class name: "head", "common" or "tail" (KeyError when not a class)."""
    if name in SCANNET200_HEAD:
        return "head"
    if name in SCANNET200_COMMON:
        return "common"
    if name in SCANNET200_TAIL:
        return "tail"
    raise KeyError(f"{name!r} is not a ScanNet200 class")


@dataclass(frozen=True)
class LabelRow:
    """One tsv row: a raw category, its cleaned category and id, its NYU40 id and class."""

    raw_category: str
    category: str
    category_id: int
    nyu40_id: int
    nyu40_class: str


@dataclass
class LabelMap:
    """Raw ScanNet category -> label ids; unknown raw categories map to 0 (unlabelled)."""

    rows: dict[str, LabelRow]

    def nyu40_id(self, raw_category: str) -> int:
        """NYU40 id (1..40) of a raw category, 0 when unknown."""
        row = self.rows.get(raw_category)
        return row.nyu40_id if row else 0

    def scannet20_id(self, raw_category: str) -> int:
        """NYU40 id when it is one of the 20 ScanNet benchmark classes, else 0."""
        nyu = self.nyu40_id(raw_category)
        return nyu if nyu in SCANNET20_CLASS_IDS else 0

    def scannet200_id(self, raw_category: str) -> int:
        """ScanNet200 id (the tsv ``id``) when it is one of the 200 benchmark ids, else 0."""
        row = self.rows.get(raw_category)
        return row.category_id if row and row.category_id in _SCANNET200_ID_SET else 0

    def scannet200_name(self, raw_category: str) -> str | None:
        """The ScanNet200 class name of a raw category (None when it is not one of the 200 classes)."""
        class_id = self.scannet200_id(raw_category)
        return SCANNET200_NAME_OF_ID.get(class_id)


def read_label_map(path: str | Path) -> LabelMap:
    """Read ``scannetv2-labels.combined.tsv`` (LF or CRLF); the first row of a repeated raw category wins.

    FormatError names the line and field of a row with a missing or non-integer id.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    rows: dict[str, LabelRow] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise FormatError(f"{path}: line 1: missing column(s) {missing}")
        for row in reader:
            where = Where(path, "line", reader.line_num)
            raw = as_str(row["raw_category"], where, "raw_category").strip()
            rows.setdefault(
                raw,
                LabelRow(
                    raw_category=raw,
                    category=as_str(row["category"], where, "category").strip(),
                    category_id=as_int(row["id"], where, "id", minimum=1),
                    nyu40_id=as_int(row["nyu40id"], where, "nyu40id", minimum=0),
                    nyu40_class=(row["nyu40class"] or "").strip(),
                ),
            )
    return LabelMap(rows)
