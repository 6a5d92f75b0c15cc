import collections

from ensemble.data import assign_folds, load_dataset, manifest_hash
from tests.images import encode, photo_like


def _manifest_dataset(root):
    rows = ["path,label,source,generator,split"]
    for game in ("g1", "g2", "g3", "g4"):
        for label in ("REAL", "FAKE"):
            for n in range(3):
                rows.append(f"modern/{game}/{label}/{n}.jpg,{label},modern,x,train")
    for n in range(12):
        label = "FAKE" if n % 2 else "REAL"
        rows.append(f"cifake/{label}/{n}.jpg,{label},cifake,sd,{'test' if n < 2 else 'train'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_folds_keep_each_modern_game_whole(tmp_path):
    samples = load_dataset(_manifest_dataset(tmp_path), split="train")
    folds = assign_folds(samples, 3, seed=0)
    by_game = collections.defaultdict(set)
    for sample, fold in zip(samples, folds):
        if sample.source == "modern":
            by_game[sample.group].add(int(fold))
    assert len(by_game) == 4 and all(len(f) == 1 for f in by_game.values())
    assert set(folds.tolist()) == {0, 1, 2}


def test_split_filter_and_hash(tmp_path):
    root = _manifest_dataset(tmp_path)
    train = load_dataset(root, split="train")
    test = load_dataset(root, split="test")
    assert len(test) == 2 and all(s.split == "test" for s in test)
    assert manifest_hash(train, root) == manifest_hash(list(reversed(train)), root)
    assert manifest_hash(train, root) != manifest_hash(train[1:], root)


def test_real_and_fake_folders(tmp_path):
    for label in ("REAL", "FAKE"):
        (tmp_path / label).mkdir()
        for n in range(2):
            (tmp_path / label / f"{n}.png").write_bytes(encode(photo_like(20, 20), "PNG"))
    (tmp_path / "FAKE" / "notes.txt").write_text("not an image")
    samples = load_dataset(tmp_path)
    assert sorted(s.label for s in samples) == [0, 0, 1, 1]


def test_folds_hold_out_fake_art_by_generator_and_spread_real_art(tmp_path):
    rows = ["path,label,source,generator,split"]
    for generator in ("dalle", "midjourney", "sd", "ldm", "starryai", "dreamstudio"):
        rows += [f"art/FAKE/{generator}{n}.jpg,FAKE,art,{generator},train" for n in range(4)]
    rows += [f"art/REAL/i{n}.jpg,REAL,art,illustrations,train" for n in range(12)]
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    samples = load_dataset(tmp_path, split="train")
    folds = assign_folds(samples, 3, seed=0)
    fake_folds, real_folds = collections.defaultdict(set), []
    for sample, fold in zip(samples, folds):
        if sample.label == 1:
            fake_folds[sample.group].add(int(fold))
        else:
            real_folds.append(int(fold))
    assert len(fake_folds) == 6 and all(len(f) == 1 for f in fake_folds.values())
    # One art style must not be held out whole: its 12 pictures land 4 per fold.
    assert collections.Counter(real_folds) == {0: 4, 1: 4, 2: 4}


def test_folds_keep_each_pool_group_whole(tmp_path):
    rows = ["path,label,source,group,generator,split"]
    for group, category, labels in (
        ("quiz_a", "games", ("REAL", "FAKE")),
        ("quiz_b", "games", ("REAL", "FAKE")),
        ("gallery_a", "galleries", ("FAKE",)),
        ("gallery_b", "galleries", ("FAKE",)),
        ("photos_a", "photos", ("REAL",)),
        ("held_out", "photos", ("REAL",)),
    ):
        for label in labels:
            for n in range(5):
                split = "test" if group == "held_out" else "train"
                rows.append(f"{group}/{label}/{n}.jpg,{label},{category},{group},x,{split}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    samples = load_dataset(tmp_path, split="train")
    assert {s.group for s in samples} == {
        "pool:quiz_a",
        "pool:quiz_b",
        "pool:gallery_a",
        "pool:gallery_b",
        "pool:photos_a",
    }
    folds = assign_folds(samples, 2, seed=0)
    by_group = collections.defaultdict(set)
    for sample, fold in zip(samples, folds):
        by_group[sample.group].add(int(fold))
    assert all(len(f) == 1 for f in by_group.values())
    # groups of one category are spread over the folds, so every fold trains on some of each
    assert by_group["pool:quiz_a"] != by_group["pool:quiz_b"]
    assert by_group["pool:gallery_a"] != by_group["pool:gallery_b"]
