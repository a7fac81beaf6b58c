"""The table "bad input -> what trashkit does" (docs/bad-input.md), run row by row against
one generated hostile dataset (image folders, a COCO file, YAMLs, checkpoints, run folders),
so the table stays true.

Each row of :data:`TABLE` is (input, what trashkit does, check); every check must pass, and
docs/bad-input.md is generated from the rows (``make docs``: ``python tests/test_hostile.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from trashkit.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from trashkit.data import build_cache, build_crop_table, export_crops, load_coco, load_source
from trashkit.models import YamlConfigError, build_model, build_yaml_model

RNG = np.random.default_rng(0)


def _jpeg(path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 255, (30, 40, 3), np.uint8)).save(path, **kw)
    return path


def _folder(root: Path) -> Path:
    """An image folder with one of every kind of trouble beside good images."""
    metal, paper = root / "Metal", root / "Paper"
    for i in range(3):
        _jpeg(metal / f"ok{i}.jpg")
        _jpeg(paper / f"ok{i}.jpg")
    good = (metal / "ok0.jpg").read_bytes()
    (metal / "cut.jpg").write_bytes(good[: len(good) // 2])
    (metal / "zero.jpg").write_bytes(b"")
    (metal / "fake.jpg").write_text("not an image")
    base = Image.fromarray(RNG.integers(0, 255, (30, 40, 3), np.uint8))
    base.convert("CMYK").save(metal / "cmyk.jpg")
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(metal / "clear.png")
    base.convert("P").save(paper / "palette.png")
    Image.fromarray((RNG.integers(0, 65535, (30, 40))).astype(np.uint16)).save(
        paper / "sixteen.png"
    )
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown upright
    _jpeg(paper / "rotated.jpg", exif=exif.tobytes())
    Image.new("1", (15000, 12000)).save(paper / "huge.png")  # 180 M pixels: a bomb
    (paper / "Thumbs.db").write_bytes(b"\x00" * 10)
    os.symlink(root / "nowhere.jpg", paper / "dangling.jpg")
    (root / "Plastic").mkdir()
    return root


def _coco(root: Path) -> Path:
    """A COCO file whose names, boxes and categories were never checked."""
    _jpeg(root / "images" / "a.jpg")
    _jpeg(root / "outside" / "secret.jpg")
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
        {"id": 2, "file_name": "../outside/secret.jpg", "width": 40, "height": 30},
        {"id": 3, "file_name": str(root / "outside" / "secret.jpg"), "width": 40, "height": 30},
    ]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [2, 2, 10, 10]},
        {"id": 3, "image_id": 3, "category_id": 1, "bbox": [2, 2, 10, 10]},
        {"id": 4, "image_id": 1, "category_id": 1},
        {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 2]},
        {"id": 6, "image_id": 1, "category_id": 1, "bbox": ["x", 1, 2, 3]},
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, -3]},
        {"id": 8, "image_id": 1, "category_id": 1, "bbox": [30, 20, 30, 30]},
        {"id": 9, "image_id": 1, "category_id": 99, "bbox": [20, 2, 8, 8]},
    ]
    cats = [{"id": 1, "name": "Drink can", "supercategory": "Can"}]
    path = root / "images" / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    dup = root / "dup.json"
    dup.write_text(
        json.dumps(
            {
                "images": images + [dict(images[0], file_name="b.jpg")],
                "annotations": anns[:1],
                "categories": cats,
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    return {"root": root, "folder": _folder(root / "folder"), "coco": _coco(root / "coco")}


@pytest.fixture(scope="module")
def cached(hostile):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scan = load_source(hostile["folder"])
        cache = build_cache(scan.samples, 24, hostile["root"] / "cache", progress=False)
    reasons = {
        Path(p).name: why for p, why in cache.skipped + [(str(p), w) for p, w in scan.skipped]
    }
    return scan, cache, reasons


def check_corrupt(hostile, cached):
    _, cache, why = cached
    assert "truncated" in why["cut.jpg"] and "zero.jpg" in why and "fake.jpg" in why
    assert len(cache) > 0  # the rest is kept


def check_not_image(hostile, cached):
    assert "not an image file" in cached[2]["Thumbs.db"]


def check_modes(hostile, cached):
    scan, cache, why = cached
    kept = {Path(p).name for p in cache.paths}
    assert {"cmyk.jpg", "clear.png", "palette.png", "sixteen.png"} <= kept
    clear = cache.images[[Path(p).name for p in cache.paths].index("clear.png")]
    assert clear.min() == 255  # transparent pixels become white


def check_high_bit_depth(hostile, cached):
    from trashkit.data import BadImage, open_rgb

    folder = hostile["root"] / "deep"
    folder.mkdir()
    unit = RNG.uniform(0, 1, (30, 40)).astype(np.float32)
    Image.fromarray(unit, mode="F").save(folder / "float01.tif")
    counts = RNG.integers(0, 256, (30, 40)).astype(np.int32)
    Image.fromarray(counts, mode="I").save(folder / "int32.tif")
    Image.fromarray(unit * 1000, mode="F").save(folder / "float1000.tif")
    got = np.asarray(open_rgb(folder / "float01.tif"))[..., 0].astype(float)
    assert abs(got.mean() - 255 * unit.mean()) < 1  # not all black
    got = np.asarray(open_rgb(folder / "int32.tif"))[..., 0]
    assert np.abs(got.astype(int) - counts).max() <= 1
    with pytest.raises(BadImage, match="no known scale"):
        open_rgb(folder / "float1000.tif")


def check_exif(hostile, cached):
    from trashkit.data import open_rgb

    assert open_rgb(hostile["folder"] / "Paper" / "rotated.jpg").size == (30, 40)


def check_huge(hostile, cached):
    assert "huge.png" in cached[2] and "refused" in cached[2]["huge.png"]


def check_empty_class(hostile, cached):
    with pytest.warns(UserWarning, match="class folder 'Plastic' has no images"):
        scan = load_source(hostile["folder"])
    assert "Plastic" not in scan.classes


def check_unicode_classes(hostile, cached):
    import unicodedata

    nfc, nfd = (unicodedata.normalize(form, "été") for form in ("NFC", "NFD"))
    assert nfc != nfd
    comp = hostile["root"] / "unicode"
    _jpeg(comp / "train" / nfc / "a.jpg")
    _jpeg(comp / "val" / nfd / "b.jpg")  # the same class, copied from a Mac
    scan = load_source(comp)
    assert scan.classes == [nfc] and len(scan.samples) == 2
    twins = hostile["root"] / "twins"
    _jpeg(twins / nfc / "a.jpg")
    _jpeg(twins / nfd / "b.jpg")
    with pytest.raises(ValueError, match="same name 'été' in different Unicode forms"):
        load_source(twins)


def check_dangling(hostile, cached):
    assert "missing file" in cached[2]["dangling.jpg"]


def check_val_only_class(hostile, cached):
    comp = hostile["root"] / "comp"
    shutil.copytree(hostile["folder"] / "Metal", comp / "train" / "Metal", dirs_exist_ok=True)
    shutil.copytree(hostile["folder"] / "Metal", comp / "val" / "Glass", dirs_exist_ok=True)
    with pytest.raises(ValueError, match="Glass"):
        load_source(comp)


def check_rare_class(hostile, cached):
    from trashkit.data.split import holdout_split, uncovered_classes

    labels = np.array([0] * 10 + [1] * 10 + [2] * 2)
    _, val, _ = holdout_split(labels, 0.2, 0.0, seed=0)
    assert uncovered_classes(labels, val, ["a", "b", "rare"]) == ["rare"]


def check_unsafe_path(hostile, cached):
    t = build_crop_table(hostile["coco"], "synthetic", val_fraction=0.0)
    assert t.attrs["unsafe_path_ann_ids"] == [2, 3]
    out = export_crops(t, hostile["coco"].parent, hostile["root"] / "crops")
    assert out.written == (t.status == "kept").sum() == 2  # a.jpg's two good boxes only
    assert not any(
        "_2.jpg" in p.name or "_3.jpg" in p.name for p in (hostile["root"] / "crops").rglob("*.jpg")
    )


def check_duplicate_ids(hostile, cached):
    with pytest.raises(ValueError, match=r"duplicate image id\(s\) \[1\]"):
        load_coco(hostile["coco"].parent.parent / "dup.json")


def check_bad_bbox(hostile, cached):
    t = build_crop_table(hostile["coco"], "synthetic", val_fraction=0.0)
    assert {4, 5, 6, 7} <= set(t.attrs["bad_box_ann_ids"])
    assert bool(t.set_index("ann_id").loc[8, "clipped"])  # reaches outside: clipped


def check_unknown_category(hostile, cached):
    t = build_crop_table(hostile["coco"], "synthetic", val_fraction=0.0)
    assert t.attrs["unknown_category_ids"] == [99]


def check_yaml(hostile, cached):
    for text, arg in (
        ("width_multiple: 0", "width_multiple"),
        ("depth_multiple: -1", "depth_multiple"),
        ("input_channel: 0", "input_channel"),
    ):
        path = hostile["root"] / "bad.yaml"
        path.write_text(f"{text}\nbackbone:\n  - [1, Conv, [16, 3, 2]]\n")
        with pytest.raises(YamlConfigError, match=rf"bad.yaml:1.*{arg}"):
            build_yaml_model(path, 6)
    path.write_text("backbone:\n  - [1, Conv, [16, 3, 1, -1]]\n")
    with pytest.raises(YamlConfigError, match=r"bad.yaml:2: backbone\[0\] Conv.*'p'"):
        build_yaml_model(path, 6)


def check_train_config(hostile, cached):
    from trashkit.train import TrainConfig

    with pytest.raises(ValueError, match="training parameter image_size=32.7 is invalid"):
        TrainConfig.from_dict({"image_size": 32.7})
    with pytest.raises(ValueError, match="training parameter epochs='2' is invalid"):
        TrainConfig.from_dict({"epochs": "2"})


def check_misspelled_parameter(hostile, cached):
    from trashkit.notebook import UnknownParameter, check_parameters

    history = ["import x", "epochs = 30\nlr = 0.1\n", "# Parameters\nepoch = 1\n"]
    with pytest.raises(UnknownParameter, match="unknown parameter 'epoch' — did you mean"):
        check_parameters({"In": history})


def _checkpoint(path: Path, model: str = "tiny", **raw) -> Path:
    ck = Checkpoint(
        weights=build_model("tiny", 6).state_dict(),
        classes=list("abcdef"),
        config={"model": model},
        image_size=24,
    )
    save_checkpoint(path, ck)
    if raw:
        torch.save({**torch.load(path, weights_only=True), **raw}, path)
    return path


class _Planted:
    def __reduce__(self):
        return (print, ("this must never run",))


def check_pickled_code(hostile, cached):
    path = _checkpoint(hostile["root"] / "evil.pt", extra={"x": _Planted()})
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(path)


def check_mismatch(hostile, cached):
    path = _checkpoint(hostile["root"] / "mismatch.pt", model="mbv3_reduced")
    with pytest.raises(CheckpointError, match="do not fit model 'mbv3_reduced'"):
        load_checkpoint(path).build_model()


def _with_architecture(path: Path, arch: list[dict]) -> Path:
    net = build_model("tiny", 6)
    ck = Checkpoint(
        weights=net.state_dict(),
        classes=list("abcdef"),
        config={"model": "tiny"},
        image_size=24,
        architecture=arch,
    )
    save_checkpoint(path, ck)
    return path


def check_architecture_escape(hostile, cached):
    lin = {"in_features": 2, "out_features": 2, "bias": True}
    calls = (torch.nn.Module.__call__, torch.nn.Module.forward, torch.nn.Linear.forward)
    for where in (
        "__class__.forward",
        "__class__.__base__.__call__",
        "layers.0.__dict__",
        "config",
        "layers._modules",
    ):
        path = _with_architecture(
            hostile["root"] / "escape.pt", [{"path": where, "type": "Linear", "args": lin}]
        )
        with pytest.raises(CheckpointError, match="not a child module"):
            load_checkpoint(path).build_model()
    path = _with_architecture(
        hostile["root"] / "type.pt", [{"path": "layers.0", "type": "Module", "args": {}}]
    )
    with pytest.raises(CheckpointError, match="unknown layer type 'Module'"):
        load_checkpoint(path).build_model()
    path = _with_architecture(
        hostile["root"] / "arg.pt",
        [{"path": "layers.0", "type": "Linear", "args": {**lin, "in_features": -3}}],
    )
    with pytest.raises(CheckpointError, match="'in_features' must be a positive integer"):
        load_checkpoint(path).build_model()
    assert (torch.nn.Module.__call__, torch.nn.Module.forward, torch.nn.Linear.forward) == calls
    x = torch.randn(1, 3, 24, 24)  # a model built afterwards still works
    assert build_model("tiny", 6).eval()(x).shape == (1, 6)


def check_declared_size(hostile, cached):
    for n in (10**6, 30_000):  # a terabyte, then a few gigabytes
        path = _with_architecture(
            hostile["root"] / "huge.pt",
            [
                {
                    "path": "layers.9",
                    "type": "Linear",
                    "args": {"in_features": n, "out_features": n, "bias": True},
                }
            ],
        )
        with pytest.raises(CheckpointError, match="declares .* parameters; a checkpoint may"):
            load_checkpoint(path).build_model()
    path = _with_architecture(
        hostile["root"] / "small.pt",
        [
            {
                "path": "layers.9",
                "type": "Linear",
                "args": {"in_features": 300, "out_features": 300, "bias": True},
            }
        ],
    )
    with pytest.raises(CheckpointError, match=r"do not fit model 'tiny': missing: \['layers.9"):
        load_checkpoint(path).build_model()


def check_book_names(hostile, cached):
    import nbformat
    from bs4 import BeautifulSoup

    from trashkit import book

    folder = hostile["root"] / "book"
    folder.mkdir()
    evil = '02_"><img src=x onerror=alert(1)>'
    results = []
    for stem in ("01_ok", evil):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A chapter")])
        path = folder / f"{stem}.ipynb"
        nbformat.write(nb, path)
        results.append(
            {
                "executed": str(path),
                "chapter": stem,
                "parameters": {},
                "seconds": 1.0,
                "source": str(path),
            }
        )
    out = folder / "html"
    out.mkdir()
    book.render_book(results, out, {"date": "today"}, "test")
    for page in ("index.html", "01_ok.html", f"{evil}.html"):
        soup = BeautifulSoup((out / page).read_text(), "html.parser")
        assert not soup.find_all(attrs={"onerror": True}), page
        hrefs = {a["href"] for a in soup.find_all("a", href=True)}
        assert not any(h.startswith('02_"') for h in hrefs)
    links = BeautifulSoup((out / "01_ok.html").read_text(), "html.parser").find_all("a", rel="next")
    from urllib.parse import unquote

    assert {unquote(a["href"]) for a in links} == {f"{evil}.html"}


def check_forged_scores(hostile, cached):
    from test_leaderboard import scores, training_run, write

    from trashkit.scoring import leaderboard

    tmp_path = hostile["root"] / "board"
    root = tmp_path / "outputs"
    alice = training_run(root / "alice")
    bob = training_run(root / "bob", f1=0.6)
    other = tmp_path / "elsewhere" / "best.pt"
    other.parent.mkdir()
    other.write_bytes(b"someone else's weights")
    scores(root / "mallory" / "scores.json", alice / "best.pt", f1=7.5, macs=-3)  # ranges
    scores(root / "eve" / "scores.json", other)  # a checkpoint outside the leaderboard
    forged = root / "trent" / "scores.json"
    scores(forged, bob / "best.pt", f1=0.99)
    data = json.loads(forged.read_text())
    write(forged, {**data, "checkpoint_sha256": "0" * 64})  # claims bob's file, not its hash
    write(root / "junk" / "scores.json", {"f1": 0.9})
    (root / "broken").mkdir()
    (root / "broken" / "metrics.json").write_text("{not json")
    write(root / "lone" / "metrics.json", json.loads((bob / "metrics.json").read_text()))
    with pytest.warns(UserWarning, match="rejected"):
        board = leaderboard(root)
    assert sorted(board["run"]) == ["alice", "bob"]
    assert list(board["f1"]) == [0.6, 0.5]  # their own validation F1s, nothing replaced
    why = {p.split("/")[-2]: reason for p, reason in board.attrs["rejected"]}
    assert set(why) == {"mallory", "eve", "trent", "junk", "broken", "lone"}
    assert "'f1' must be a number in [0, 1]" in why["mallory"]
    assert "not under" in why["eve"] and "SHA-256 differs" in why["trent"]
    assert "'checkpoint' is missing" in why["junk"] and "no config.json" in why["lone"]


def _cfg(hostile, **kw) -> dict:
    return {
        "data": str(hostile["folder"]),
        "model": "tiny",
        "image_size": 24,
        "epochs": 1,
        "batch_size": 2,
        "workers": 0,
        "val_fraction": 0.3,
        **kw,
    }


def check_concurrent_runs(hostile, cached):
    import subprocess
    import sys

    from trashkit.runs import RunLocked
    from trashkit.train import train

    folder = hostile["root"] / "locked"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from trashkit.runs import RunLock; "
            "lock = RunLock(sys.argv[1]); print('held', flush=True); time.sleep(60)",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=rf"in use by process {holder.pid} on "):
            train(_cfg(hostile), folder, progress=False)
        (folder / "config.json").write_text(json.dumps(_cfg(hostile)))
        with pytest.raises(RunLocked, match=rf"in use by process {holder.pid}"):
            train(None, folder, resume=True, progress=False)
        assert json.loads((folder / "config.json").read_text()) == _cfg(hostile)
    finally:
        holder.kill()  # kill -9: the kernel frees the lock, nothing is left stuck
        holder.wait()
    from trashkit.runs import RunLock

    with RunLock(folder):
        pass


def check_checked_before_written(hostile, cached):
    from trashkit.train import train

    evil = _checkpoint(hostile["root"] / "evil_start.pt", extra={"x": _Planted()})
    cases = [
        ({"model": "tinyy"}, ValueError, "model='tinyy' is invalid"),
        ({"device": "foo"}, ValueError, "device='foo' is invalid"),
        ({"seed": 2**70}, ValueError, r"seed=\d+ is invalid: expected an integer in \[0, 2\*"),
        ({"classes": ["Metal", "Nope"]}, (ValueError, FileNotFoundError), "Nope"),
        ({"init_from": str(evil)}, CheckpointError, "pickled Python objects"),
        ({"teacher": str(evil)}, CheckpointError, "pickled Python objects"),
    ]
    if not torch.cuda.is_available():
        cases.append(({"device": "cuda"}, ValueError, "device='cuda' is not available"))
    for i, (bad, error, message) in enumerate(cases):
        folder = hostile["root"] / f"bad_run_{i}"
        with pytest.raises(error, match=message):
            train(_cfg(hostile, **bad), folder, progress=False)
        assert not folder.exists(), f"{bad} left {sorted(folder.iterdir())}"


def check_stale_temporaries(hostile, cached):
    from trashkit.train.distributed import Dist
    from trashkit.train.setup import open_run_dir

    folder = hostile["root"] / "interrupted"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(_cfg(hostile)))
    stale = [folder / ".last.pt.4242.tmp", folder / ".history.csv.77.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")  # what a kill during write_atomic leaves
    (folder / "notes.tmp").write_text("not ours")
    cfg, out, lock = open_run_dir(None, folder, True, Dist())
    lock.release()
    assert not any(p.exists() for p in stale) and (folder / "notes.tmp").exists()


def check_machine_on_resume(hostile, cached):
    from trashkit.train import train

    folder = hostile["root"] / "gpu_run"
    folder.mkdir()  # a run started on a GPU machine, killed in its first epoch
    (folder / "config.json").write_text(json.dumps(_cfg(hostile, device="cuda:7")))
    metrics = train({"device": "cpu"}, folder, resume=True, progress=False)
    assert metrics["device"] == "cpu" and metrics["epochs"] == 1
    with pytest.raises(ValueError, match=r"'epochs': \(1, 2\)"):  # the run's own: refused
        train({"epochs": 2}, folder, resume=True, progress=False)


def check_search_parameters(hostile, cached):
    from trashkit.search import SearchConfig

    for bad, message in (
        (
            {"objective": "flops"},
            r"objective='flops' is invalid: expected one of \['macs', "
            r"'latency'\]",
        ),
        ({"n_trials": "abc"}, r"n_trials='abc' is invalid: expected an integer >= 1"),
        ({"image_sizes": 32}, r"image_sizes=32 is invalid: expected a list of integers >= 16"),
        ({"sampler": "nsgaii"}, r"sampler='nsgaii' is invalid.*did you mean 'nsga2'"),
        ({"trials": 5}, r"unknown search parameter 'trials'"),
    ):
        with pytest.raises(ValueError, match=message):
            SearchConfig.from_dict(bad)


def check_silent_database(hostile, cached):
    import socket
    import threading
    import time

    from trashkit.search import SearchConfig, load_study

    server = socket.create_server(("127.0.0.1", 0))  # accepts, then never says a word
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    port = server.getsockname()[1]
    cfg = SearchConfig(storage=f"postgresql://alice:s3cret@127.0.0.1:{port}/db", connect_timeout=1)
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match=rf"127\.0\.0\.1:{port}/db within 1 s") as err:
        load_study(cfg, hostile["root"])
    assert time.perf_counter() - t0 < 20 and "s3cret" not in str(err.value)
    server.close()


def check_command_line_errors(hostile, cached):
    import contextlib
    import io
    import subprocess
    import sys

    from trashkit.__main__ import main

    for args, message in (
        (["train", "--set", "model=tinyy"], "trashkit train: error: training parameter model="),
        (["train", "--set", "epochs=abc"], "trashkit train: error: training parameter epochs="),
        (
            ["search", "--output-dir", str(hostile["root"] / "s"), "--set", "objective=flops"],
            "trashkit search: error: search parameter objective='flops' is invalid",
        ),
    ):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(args) == 2
        assert err.getvalue().strip().splitlines() == [err.getvalue().strip()]  # one line
        assert message in err.getvalue()
    with pytest.raises(ValueError, match="model='tinyy'"):  # --debug: the exception itself
        main(["--debug", "train", "--set", "model=tinyy"])
    done = subprocess.run(  # the real command: exit status 2, no traceback
        [sys.executable, "-m", "trashkit", "train", "--set", "model=tinyy"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


def check_malformed_solution(hostile, cached):
    import nbformat

    from trashkit.book import MarkerError, make_student

    chapters, base = hostile["root"] / "chapters", hostile["root"] / "students"
    chapters.mkdir()
    ok = "x = 1\n### BEGIN SOLUTION\nx = 2\n### END SOLUTION\n"
    for name, source in (("01_ok", ok), ("02_open", "### BEGIN SOLUTION\nx = 2\n")):
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell("y = 0"), nbformat.v4.new_code_cell(source)]
        )
        nbformat.write(nb, chapters / f"{name}.ipynb")
    with pytest.raises(MarkerError, match="02_open.ipynb, cell 1: BEGIN SOLUTION without an END"):
        make_student(notebooks=chapters, base=base)
    assert not base.exists() or not any(base.iterdir())  # nothing half-written


def check_onnx_overwrite(hostile, cached):
    from trashkit.compress.onnx_rt import export_onnx

    path = hostile["root"] / "model.onnx"
    path.write_bytes(b"an earlier export")
    with pytest.raises(FileExistsError, match="already exists"):
        export_onnx(build_model("tiny", 6), 24, path)
    assert path.read_bytes() == b"an earlier export" and not list(path.parent.glob(".*.tmp"))


def check_newer(hostile, cached):
    path = _checkpoint(hostile["root"] / "newer.pt", version=99)
    with pytest.raises(CheckpointError, match="newer trashkit"):
        load_checkpoint(path)


def check_unknown_class(hostile, cached):
    from trashkit.scoring import score_folder

    ckpt = load_checkpoint(_checkpoint(hostile["root"] / "six.pt"))
    with pytest.raises(ValueError, match=r"class\(es\) \['Metal', 'Paper'\] that the model"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score_folder(ckpt, hostile["folder"], progress=False)


def check_reused_folder(hostile, cached):
    from trashkit.runs import resolve_output_dir

    with pytest.raises(FileExistsError, match="already holds files"):
        resolve_output_dir(hostile["folder"], "x")


def check_storage_url(hostile, cached):
    from trashkit.search import SearchConfig, storage_url

    with pytest.raises(ValueError, match="is not a database URL"):
        storage_url(SearchConfig(storage="postgres//nope"), hostile["root"])


#: (input, what trashkit does, check) - the README table, row by row
TABLE = [
    (
        "truncated, zero-byte or non-image file with an image extension",
        "skipped and reported by name; the rest is kept",
        check_corrupt,
    ),
    ("stray non-image file (Thumbs.db, notes)", "not scanned; reported", check_not_image),
    (
        "grayscale, RGBA, CMYK, 16-bit, palette image",
        "converted to RGB (transparent: white)",
        check_modes,
    ),
    (
        "float TIFF with values in [0, 1], int32 image with 0–255 values, float image of "
        "unknown scale",
        "scaled by what the values say (×255, as is); unknown scale: skipped with the reason",
        check_high_bit_depth,
    ),
    ("EXIF-rotated phone photo", "turned upright", check_exif),
    ("huge image (a decompression bomb)", "refused, skipped and reported", check_huge),
    ("empty class folder", "reported; left out of the class list", check_empty_class),
    (
        "class folder `été` spelled in NFC in train/ and NFD in val/, or both in one folder",
        "names normalised to NFC (one class); two look-alike folders side by side are refused "
        "by name",
        check_unicode_classes,
    ),
    (
        "dangling symlink, or file deleted after the scan",
        "skipped and reported as missing",
        check_dangling,
    ),
    (
        "competition layout: class in val/ but not in train/",
        "error naming the class",
        check_val_only_class,
    ),
    (
        "class too small for a validation share",
        "said before training; macro-F1 covers the "
        "classes that have validation images (listed in metrics.json)",
        check_rare_class,
    ),
    (
        "COCO file_name with ../ or an absolute path",
        "never opened; counted as unsafe_path and reported by annotation id",
        check_unsafe_path,
    ),
    ("COCO duplicate image / category ids", "error naming the ids", check_duplicate_ids),
    (
        "COCO bbox missing, too short, not numbers, or empty",
        "counted as bad_box, named by annotation id; boxes reaching outside the image are clipped",
        check_bad_bbox,
    ),
    (
        "COCO category id missing from the categories",
        "counted as unknown_category, ids reported",
        check_unknown_category,
    ),
    (
        "YAML with width_multiple <= 0, negative depth, input_channel 0, negative padding",
        "error naming file, line, module and argument",
        check_yaml,
    ),
    (
        'training parameter of the wrong type or range (image_size=32.7, epochs="2")',
        "error naming the parameter and what it expects",
        check_train_config,
    ),
    (
        "misspelled papermill parameter (-p epoch 1)",
        "the chapter stops at once: unknown parameter 'epoch' — did you mean 'epochs'?",
        check_misspelled_parameter,
    ),
    (
        "checkpoint holding pickled code",
        "refused without running it (weights_only loading)",
        check_pickled_code,
    ),
    (
        "checkpoint whose weights do not fit its model",
        "error naming the model and the mismatch",
        check_mismatch,
    ),
    (
        "checkpoint whose architecture names attributes (`__class__.forward`), unknown types "
        "or bad arguments",
        "refused before anything is built: only child modules of the network are replaced, "
        "only Conv2d / Linear / BatchNorm with checked arguments",
        check_architecture_escape,
    ),
    (
        "checkpoint declaring a huge layer (10⁶ × 10⁶ Linear, or a few GB)",
        "refused before allocating: sizes are checked on the meta device against the weights "
        "present and MAX_PARAMS (50M)",
        check_declared_size,
    ),
    ("checkpoint from a newer trashkit", "refused, with the versions", check_newer),
    (
        'chapter file name with HTML in it (`"><img onerror=…>`)',
        "the book escapes it in every link and title (URL-encoded, then attribute-escaped)",
        check_book_names,
    ),
    (
        "evaluation images of a class the model does not know",
        "error naming the class",
        check_unknown_class,
    ),
    (
        "output folder that already holds files",
        "refused; nothing is overwritten",
        check_reused_folder,
    ),
    ("Optuna storage URL that is not a URL", "fails at once with examples", check_storage_url),
    (
        "command-line mistake (python -m trashkit train --set model=tinyy, epochs=abc, "
        "search --set objective=flops)",
        "one line on stderr naming the parameter, exit status 2, like git; `--debug` shows "
        "the traceback",
        check_command_line_errors,
    ),
    (
        "chapter with a BEGIN SOLUTION that is never closed (make student)",
        "error naming the notebook and the cell; no student folder is written",
        check_malformed_solution,
    ),
    (
        "ONNX export (or int8 file) onto an existing file",
        "refused; the earlier file is kept, nothing half-written is left",
        check_onnx_overwrite,
    ),
    (
        "search parameter of the wrong type or value (objective=flops, n_trials=abc, "
        "image_sizes=32)",
        "error naming the parameter and what it expects (with a close match)",
        check_search_parameters,
    ),
    (
        "PostgreSQL URL of a server that accepts the connection but never answers",
        "fails after connect_timeout seconds naming the host, never the password",
        check_silent_database,
    ),
    (
        "two trainings started into one folder at once, or `--resume` of a run still training",
        "the second is refused with the holder's pid, host, start time and command (a lock "
        "held for the life of the run; freed by the kernel even on kill -9)",
        check_concurrent_runs,
    ),
    (
        "a run whose config fails only when it starts (model=tinyy, device=foo, device=cuda "
        "on a CPU machine, seed 2⁷⁰, a missing class, a pickled init_from / teacher)",
        "error naming the parameter before config.json is written: no folder is left behind",
        check_checked_before_written,
    ),
    (
        "half-written `.name.pid.tmp` files left by a save that was killed",
        "removed when the run folder is next opened (under its lock); other files are left",
        check_stale_temporaries,
    ),
    (
        "a run started on a GPU resumed on a CPU machine",
        "resume takes the machine's device / workers anew; the run's own parameters stay",
        check_machine_on_resume,
    ),
    (
        "scores.json with F1 7.5 or negative MACs, naming another run's checkpoint, or outside "
        "the leaderboard's folder",
        "rejected and listed by name with the reason (schema and ranges checked; a score "
        "counts only for the checkpoint file it scored, by SHA-256)",
        check_forged_scores,
    ),
]


@pytest.mark.parametrize("row", TABLE, ids=[r[0][:40] for r in TABLE])
def test_row_holds(row, hostile, cached):
    row[2](hostile, cached)


DOCS = REPO / "docs" / "bad-input.md"


def render_docs() -> str:
    """docs/bad-input.md, made from :data:`TABLE` (so the page and the tests cannot drift)."""
    rows = "".join(f"| {a} | {b} |\n" for a, b, _ in TABLE)
    return (
        "# Bad input → what trashkit does\n\n"
        "<!-- generated from tests/test_hostile.py by `make docs`; edit the TABLE there -->\n\n"
        "Data, checkpoints and parameters come from people and files nobody checked. Each row "
        "below is a check in `tests/test_hostile.py`, run against one generated hostile dataset "
        "(image folders, a COCO file, YAMLs, checkpoints, run folders, a silent database "
        "server on 127.0.0.1) by `make check` and `make test`.\n\n"
        f"| input | what trashkit does |\n|---|---|\n{rows}"
    )


def test_docs_table_is_generated_from_the_rows():
    assert DOCS.is_file() and DOCS.read_text() == render_docs(), (
        "docs/bad-input.md is not what tests/test_hostile.py's TABLE says: run `make docs`"
    )


def test_no_row_is_forgotten():
    """Every check_* function of this module is a row of the table."""
    checks = {name for name in globals() if name.startswith("check_")}
    assert checks == {r[2].__name__ for r in TABLE}


if __name__ == "__main__":
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(render_docs())
    print(f"wrote {DOCS} ({len(TABLE)} rows)")
