"""The software renderer against analytic depth, occlusion and a novel camera pose; the scene and
question generator's splits and balance."""

from __future__ import annotations

import numpy as np
import pytest

from paperzoo.omni.render import GROUND, SKY, Box, look_at, render
from paperzoo.omni.scenes import VOCAB, depth_question_set, token_id

F, S = 16.0, 32
GREY = (0.5, 0.5, 0.5)


def _cam(eye, target):
    return look_at(eye, target, f=F, width=S, height=S)


def test_depth_of_a_box_face_is_the_analytic_distance():
    # camera at height 1 looking along +z; a 2-unit cube centred at z = 5 shows its face z = 4
    cam = _cam((0.0, 1.0, 0.0), (0.0, 1.0, 10.0))
    r = render([Box(x=0.0, z=5.0, size=(2.0, 2.0, 2.0), color=GREY)], cam)
    centre = r.depth[S // 2 - 2 : S // 2 + 2, S // 2 - 2 : S // 2 + 2]
    np.testing.assert_allclose(centre, 4.0, rtol=1e-5)
    assert (r.ids[S // 2, S // 2]) == 0
    # the face spans x in [-1, 1] at z = 4: f * 1 / 4 = 4 pixels each side of the centre
    row = r.ids[S // 2 - 1]
    assert row[S // 2 - 4 : S // 2 + 4].tolist() == [0] * 8
    assert row[S // 2 - 5] != 0 and row[S // 2 + 4] != 0
    # the ground below: z-depth = h * f / (v + 0.5 - cy) for a level camera at height h = 1
    v = S - 1
    assert r.ids[v, 0] == GROUND
    np.testing.assert_allclose(r.depth[v, 0], 1.0 * F / (v + 0.5 - S / 2), rtol=1e-5)
    assert r.ids[0, 0] == SKY and np.isinf(r.depth[0, 0])


def test_depth_is_z_depth_for_a_turned_camera_and_a_yawed_box():
    # looking along +x; a cube at x = 6 yawed by 90 degrees still shows a face at x = 5
    cam = _cam((0.0, 1.0, 0.0), (10.0, 1.0, 0.0))
    box = Box(x=6.0, z=0.0, size=(2.0, 2.0, 2.0), color=GREY, yaw=np.pi / 2)
    r = render([box], cam)
    np.testing.assert_allclose(r.depth[S // 2, S // 2], 5.0, rtol=1e-5)
    # z-depth, not the ray length: off-axis pixels on the same face keep depth 5
    np.testing.assert_allclose(r.depth[S // 2, S // 2 + 2], 5.0, rtol=1e-5)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_the_nearer_box_occludes_whatever_the_drawing_order(order):
    near = Box(x=0.0, z=4.0, size=(1.0, 1.0, 1.0), color=(1.0, 0.0, 0.0))
    far = Box(x=0.0, z=8.0, size=(3.0, 3.0, 3.0), color=(0.0, 0.0, 1.0))
    boxes = [near, far] if order == (0, 1) else [far, near]
    r = render(boxes, _cam((0.0, 0.5, 0.0), (0.0, 0.5, 10.0)))
    i_near = boxes.index(near)
    assert r.ids[S // 2, S // 2] == i_near
    np.testing.assert_allclose(r.depth[S // 2, S // 2], 3.5, rtol=1e-5)
    np.testing.assert_allclose(r.rgb[S // 2, S // 2, 1:], 0.0)  # red, shaded
    assert (r.ids == 1 - i_near).any()  # the big far box shows around the near one


def test_a_novel_camera_pose_sees_the_scene_from_behind():
    near = Box(x=0.0, z=4.0, size=(1.0, 1.0, 1.0), color=(1.0, 0.0, 0.0))
    far = Box(x=0.0, z=8.0, size=(1.0, 1.0, 1.0), color=(0.0, 0.0, 1.0))
    front = render([near, far], _cam((0.0, 0.5, 0.0), (0.0, 0.5, 6.0)))
    back = render([near, far], _cam((0.0, 0.5, 12.0), (0.0, 0.5, 6.0)))
    assert front.ids[S // 2, S // 2] == 0 and back.ids[S // 2, S // 2] == 1
    np.testing.assert_allclose(back.depth[S // 2, S // 2], 3.5, rtol=1e-5)  # face z = 8.5
    # the pose vector is the rotation and centre; the camera projects the box centre onto it
    assert back.camera.pose_vector().shape == (12,)
    np.testing.assert_allclose(back.camera.pose_vector()[9:], (0.0, 0.5, 12.0))
    np.testing.assert_allclose(back.camera.project(far.center), (S / 2, S / 2), atol=1e-9)


def test_question_splits_are_disjoint_deterministic_and_size_balanced():
    train = depth_question_set("train", 60)
    again = depth_question_set("train", 60)
    test = depth_question_set("test", 60)
    np.testing.assert_array_equal(train.images, again.images)
    assert not any(np.array_equal(a, b) for a in train.images for b in test.images[:10])
    # half of the questions have a nearer box that looks smaller: apparent size scores 50%
    assert train.size_agrees.mean() == 0.5 and test.size_agrees.mean() == 0.5
    assert (train.gap >= 0.6).all()
    colours = {token_id(c) for c in ("red", "green", "blue", "yellow", "purple", "white")}
    assert set(train.answers.tolist()) <= colours
    for q, a in zip(train.questions, train.answers):
        words = [VOCAB[i] for i in q]
        assert words[:2] == ["which", "is"] and VOCAB[a] in (words[3], words[5])


def test_answers_agree_with_the_rendered_depth():
    qa = depth_question_set("val", 40)
    from paperzoo.omni.scenes import COLORS

    hits = 0
    for img, depth, q, a in zip(qa.images, qa.depth, qa.questions, qa.answers):
        words = [VOCAB[i] for i in q]
        med = []
        for name in (words[3], words[5]):
            shaded = np.asarray(COLORS[name])
            # pixels of that colour (any shade): colour direction matches
            unit = img / (np.linalg.norm(img, axis=-1, keepdims=True) + 1e-6)
            mask = (unit @ (shaded / np.linalg.norm(shaded)) > 0.995) & np.isfinite(depth)
            med.append(np.median(depth[mask]))
        nearer = words[3] if med[0] < med[1] else words[5]
        farther = words[5] if nearer == words[3] else words[3]
        hits += VOCAB[a] == (nearer if words[2] == "nearer" else farther)
    assert hits >= 36  # the visible-surface depth agrees with the centre depth label


def test_the_second_camera_sees_the_answer_right_behind_the_named_box():
    """Two boxes side by side across the main camera's view, a third far off: whichever is
    named (X), the second camera stands on the line from the other (Y) through X, beyond X,
    and sees X at its centre with Y behind it."""
    from paperzoo.omni.scenes import _behind_view

    boxes = [
        Box(x=-1.0, z=3.5, size=(0.9, 0.9, 0.9), color=(0.9, 0.1, 0.1)),
        Box(x=1.0, z=3.5, size=(1.2, 1.4, 1.2), color=(0.1, 0.8, 0.15)),
        Box(x=0.0, z=9.0, size=(0.8, 0.8, 0.8), color=(0.15, 0.25, 0.95)),
    ]
    main = render(boxes, _cam((0.0, 1.5, 0.0), (0.0, 0.0, 5.0)))
    assert (main.ids == 0).sum() >= 12 and (main.ids == 1).sum() >= 12
    rng = np.random.default_rng(0)
    for _ in range(20):
        found = _behind_view(rng, boxes, main.ids, S, min_pixels=12,
                             min_separation=np.radians(20), fov_deg=60.0)  # fmt: skip
        assert found is not None
        x, y, camera, view = found
        eye, bx, by = camera.C, boxes[x], boxes[y]
        # the camera is on the ground-plane line from Y through X, 2.5-4.5 beyond X
        along = np.array([bx.x - by.x, bx.z - by.z])
        to_eye = np.array([eye[0] - bx.x, eye[2] - bx.z])
        cross = along[0] * to_eye[1] - along[1] * to_eye[0]
        assert abs(cross) < 1e-9 and np.dot(along, to_eye) > 0
        assert 2.5 <= np.linalg.norm(to_eye) <= 4.5 and 1.0 <= eye[1] <= 2.2
        assert (view.ids[15:17, 15:17] == x).all() and (view.ids == y).sum() >= 12
        assert np.linalg.norm(camera.C - by.center) > np.linalg.norm(camera.C - bx.center)


def test_behind_questions_are_deterministic_disjoint_and_well_formed():
    from paperzoo.omni.scenes import COLORS, behind_question_set

    a = behind_question_set("val", 30)
    b = behind_question_set("val", 30)
    for name in a.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    test = behind_question_set("test", 30)
    assert not any(np.array_equal(x, y) for x in a.images for y in test.images)
    assert a.images.shape == a.views.shape == (30, S, S, 3) and a.view_poses.shape == (30, 12)
    for q, ans, k in zip(a.questions, a.answers, a.num_candidates, strict=True):
        words = [VOCAB[i] for i in q]
        assert words[:3] == ["which", "is", "behind"] and words[3] in COLORS
        assert VOCAB[ans] in COLORS and VOCAB[ans] != words[3]
        assert k in (2, 3)
    # the second camera is another camera: its images differ from the main one's
    assert all(not np.allclose(x, v) for x, v in zip(a.images, a.views, strict=True))
    # the answers are spread over the colours, not one favourite
    assert np.bincount(a.answers).max() <= 0.4 * len(a)
