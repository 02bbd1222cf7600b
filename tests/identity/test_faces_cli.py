import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from qianli.cli.identity import faces_group

FX = Path(__file__).resolve().parents[1] / "fixtures" / "faces"


def test_compare_genuine_and_impostor():
    r = CliRunner().invoke(faces_group, ["compare", str(FX / "obama.jpg"), str(FX / "obama2.jpg")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["match"] is True and out["faces_a"] == 1 and out["faces_b"] == 1 and out["distance"] < 0.5
    r = CliRunner().invoke(faces_group, ["compare", str(FX / "obama.jpg"), str(FX / "biden.jpg")])
    assert json.loads(r.stdout.strip().splitlines()[-1])["match"] is False


def test_no_face_exits_nonzero(tmp_path):
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (200, 200), (90, 90, 90)).save(blank, "JPEG")
    r = CliRunner().invoke(faces_group, ["compare", str(FX / "obama.jpg"), str(blank)])
    assert r.exit_code != 0
    assert "face_not_found" in r.output
