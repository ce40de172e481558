"""A numpy software renderer for the tiny study: boxes on a ground plane, seen by a pinhole camera.

Not from the paper (Omni trains on real images, video and 3D data; arXiv:2604.21921). The tiny
study needs images whose depth is known exactly, so the package renders its own scenes.

Conventions (OpenCV camera):
- world: x right, y up, z forward; the ground is the plane y = 0; boxes stand on it.
- camera: x right, y down, z forward. A :class:`Camera` holds the world-to-camera rotation ``R``
  (3 x 3) and the camera centre ``C`` (world), so a world point X has camera coordinates
  ``R @ (X - C)``. Pixel (u, v) (column, row) is ``(fx * x / z + cx, fy * y / z + cy)``.
- depth: the z-depth, the camera-frame z of the first surface hit by the pixel's ray through its
  centre (the distance along the optical axis, as depth sensors and monocular-depth data sets
  give it), in world units. A ray that hits nothing has depth ``inf``.

Each pixel's ray is intersected with every box (slab method, in the box's own yawed frame) and
the ground plane; the nearest hit wins, which is the z-buffer test done per ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["GROUND", "SKY", "Box", "Camera", "Render", "look_at", "render"]

SKY = -2  # object id of pixels that hit nothing
GROUND = -1  # object id of pixels on the ground plane

_SKY_RGB = np.array([0.62, 0.78, 0.95], dtype=np.float32)
_GROUND_RGB = np.array([0.55, 0.52, 0.48], dtype=np.float32)
_LIGHT = np.array([0.4, 0.8, -0.45])  # direction towards the light (world)
_LIGHT = _LIGHT / np.linalg.norm(_LIGHT)


@dataclass(frozen=True)
class Box:
    """A box standing on the ground: centre (x, z) on the plane, size (sx, sy, sz), yaw (radians,
    about the world y axis), colour RGB in [0, 1]."""

    x: float
    z: float
    size: tuple[float, float, float]
    color: tuple[float, float, float]
    yaw: float = 0.0

    @property
    def center(self) -> np.ndarray:
        """(3,) world centre: the box stands on y = 0."""
        return np.array([self.x, self.size[1] / 2.0, self.z])


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: world-to-camera rotation ``R`` (3, 3), centre ``C`` (3,), focal length
    ``f`` in pixels, image ``width`` x ``height``; the principal point is the image centre."""

    R: np.ndarray
    C: np.ndarray
    f: float
    width: int
    height: int

    @property
    def cx(self) -> float:
        return self.width / 2.0

    @property
    def cy(self) -> float:
        return self.height / 2.0

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 3) camera coordinates."""
        return (np.asarray(points, dtype=np.float64) - self.C) @ self.R.T

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 2) pixel coordinates (u, v) (points in front only)."""
        p = self.to_camera(points)
        return np.stack(
            [self.f * p[..., 0] / p[..., 2] + self.cx, self.f * p[..., 1] / p[..., 2] + self.cy], -1
        )

    def pose_vector(self) -> np.ndarray:
        """(12,) float32: the flattened world-to-camera rotation, then the centre."""
        return np.concatenate([self.R.reshape(-1), self.C]).astype(np.float32)


@dataclass
class Render:
    """What :func:`render` returns: ``rgb`` (H, W, 3) float32 in [0, 1], ``depth`` (H, W) float32
    z-depth (``inf`` where nothing is hit), ``ids`` (H, W) int: the box index, GROUND or SKY."""

    rgb: np.ndarray
    depth: np.ndarray
    ids: np.ndarray
    camera: Camera = field(repr=False)


def look_at(eye, target, *, f: float, width: int, height: int) -> Camera:
    """A camera at ``eye`` looking at ``target`` (world points), with the world's y axis up."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross([0.0, 1.0, 0.0], forward)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("look_at: the view direction is vertical; the camera's roll is undefined")
    right /= np.linalg.norm(right)
    down = np.cross(right, forward)  # OpenCV: camera y points down in the image
    return Camera(R=np.stack([right, down, forward]), C=eye, f=float(f), width=width, height=height)


def _rays(camera: Camera) -> np.ndarray:
    """(H*W, 3) world ray directions through the pixel centres, scaled so camera z = 1."""
    u = (np.arange(camera.width) + 0.5 - camera.cx) / camera.f
    v = (np.arange(camera.height) + 0.5 - camera.cy) / camera.f
    uu, vv = np.meshgrid(u, v)
    d_cam = np.stack([uu, vv, np.ones_like(uu)], -1).reshape(-1, 3)
    return d_cam @ camera.R  # R^T d for each row


def _hit_box(origin: np.ndarray, dirs: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Slab test. Returns the ray parameter t of the entry point (inf on a miss) and the world
    normal of the face entered, both per ray."""
    c, s = np.cos(box.yaw), np.sin(box.yaw)
    to_local = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])  # rotation by -yaw
    o = to_local @ (origin - box.center)
    d = dirs @ to_local.T
    half = np.asarray(box.size) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - o) / d
        t2 = (half - o) / d
    t_lo, t_hi = np.minimum(t1, t2), np.maximum(t1, t2)
    t_lo = np.where(np.isnan(t_lo), -np.inf, t_lo)
    t_hi = np.where(np.isnan(t_hi), np.inf, t_hi)
    t_near, axis = t_lo.max(1), t_lo.argmax(1)
    t_far = t_hi.min(1)
    hit = (t_near <= t_far) & (t_near > 1e-6)
    n_local = np.zeros_like(d)
    rows = np.arange(len(d))
    n_local[rows, axis] = -np.sign(d[rows, axis])
    return np.where(hit, t_near, np.inf), n_local @ to_local  # back to world: to_local^T


def render(boxes: list[Box] | tuple[Box, ...], camera: Camera) -> Render:
    """Render ``boxes`` on the ground plane from ``camera``; see the module docstring."""
    dirs = _rays(camera)
    n = len(dirs)
    best_t = np.full(n, np.inf)
    ids = np.full(n, SKY, dtype=np.int64)
    normal = np.zeros((n, 3))
    color = np.tile(_SKY_RGB, (n, 1)).astype(np.float64)
    # the ground plane y = 0, seen from above only
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = -camera.C[1] / dirs[:, 1]
    ground = (dirs[:, 1] < 0) & (t_ground > 0) & (camera.C[1] > 0)
    best_t = np.where(ground, t_ground, best_t)
    ids[ground] = GROUND
    normal[ground] = (0.0, 1.0, 0.0)
    color[ground] = _GROUND_RGB
    for i, box in enumerate(boxes):
        t, nrm = _hit_box(camera.C, dirs, box)
        closer = t < best_t  # the z-buffer test (t is the z-depth: rays have camera z = 1)
        best_t = np.where(closer, t, best_t)
        ids[closer] = i
        normal[closer] = nrm[closer]
        color[closer] = box.color
    shade = np.where(ids == SKY, 1.0, 0.45 + 0.55 * np.clip(normal @ _LIGHT, 0.0, 1.0))
    rgb = np.clip(color * shade[:, None], 0.0, 1.0)
    shape = (camera.height, camera.width)
    return Render(
        rgb=rgb.reshape(*shape, 3).astype(np.float32),
        depth=best_t.reshape(shape).astype(np.float32),
        ids=ids.reshape(shape),
        camera=camera,
    )
