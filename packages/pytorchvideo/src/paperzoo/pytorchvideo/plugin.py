"""Hook implementations for paperzoo-pytorchvideo. Keep this module light: no torch imports."""

from __future__ import annotations

from paperzoo.core import ModelSpec, PaperSpec, RecipeSpec, hookimpl

_ZOO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics"
_LOADER = "paperzoo.pytorchvideo.convert:load_pytorchvideo_checkpoint"

# name -> (factory, params with 400 classes, GFLOPs (multiply-adds) at the input, input, zoo file)
_MODELS = {
    "x3d_xs": ("x3d:x3d_xs", 3_794_274, 0.605, "4x160x160", "X3D_XS.pyth"),
    "x3d_s": ("x3d:x3d_s", 3_794_274, 1.963, "13x160x160", "X3D_S.pyth"),
    "x3d_m": ("x3d:x3d_m", 3_794_274, 6.186, "16x256x256", "X3D_M.pyth"),
    "x3d_l": ("x3d:x3d_l", 6_153_384, 24.778, "16x356x356", "X3D_L.pyth"),
    "efficient_x3d_xs": (
        "efficient_x3d:efficient_x3d_xs", 3_794_322, 0.605, "4x160x160",
        "efficient_x3d_xs_original_form.pyth",
    ),
    "efficient_x3d_s": (
        "efficient_x3d:efficient_x3d_s", 3_794_322, 1.963, "13x160x160",
        "efficient_x3d_s_original_form.pyth",
    ),
}  # fmt: skip


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="pytorchvideo",
            title="PyTorchVideo: A Deep Learning Library for Video Understanding",
            authors=(
                "Haoqi Fan",
                "Tullie Murrell",
                "Heng Wang",
                "Kalyan Vasudev Alwala",
                "Yanghao Li",
                "Yilei Li",
                "Bo Xiong",
                "Nikhila Ravi",
                "Meng Li",
                "Haichuan Yang",
                "Jitendra Malik",
                "Ross Girshick",
                "Matt Feiszli",
                "Aaron Adcock",
                "Wan-Yen Lo",
                "Christoph Feichtenhofer",
            ),
            year=2021,
            arxiv="2111.09887",
            venue="ACM Multimedia 2021",
            official_code="https://github.com/facebookresearch/pytorchvideo",
            headline_results={
                "X3D-XS mobile latency, vanilla fp32 (ms, Samsung S8)": 1067.0,
                "X3D-XS mobile latency, efficient blocks fp32 (ms)": 233.0,
                "X3D-XS mobile latency, efficient blocks int8 (ms)": 165.0,
                "X3D-XS mobile speed-up fp32 (x)": 4.6,
                "X3D-XS mobile speed-up int8 (x)": 6.5,
                "K400 top-1 X3D-XS (30 views)": 69.12,
                "K400 top-1 X3D-S": 73.33,
                "K400 top-1 X3D-M": 75.94,
                "K400 top-1 X3D-L": 77.44,
                "K400 top-1 efficient X3D-XS fp32": 68.5,
                "K400 top-1 efficient X3D-XS int8": 66.9,
                "K400 top-1 efficient X3D-S fp32": 73.0,
            },
            description=(
                "A library paper: video data loading and transforms, model builders (X3D, "
                "SlowFast, ...) and the Accelerator (efficient blocks, int8 deployment). Here: "
                "X3D-XS/S/M/L, the efficient mobile X3D-XS/S, a converter for PyTorchVideo "
                "checkpoints, and fusion/export/int8 on x86 CPU. The data stack is paperzoo-data."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    specs = []
    for name, (factory, params, gflops, size, zoo_file) in _MODELS.items():
        specs.append(
            ModelSpec(
                name=name,
                factory=f"paperzoo.pytorchvideo.{factory}",
                paper="pytorchvideo",
                description=f"{name} (Kinetics-400 head), input {size}, {gflops} GFLOPs (multiply-adds)",
                num_params=params,
                flops=gflops * 1e9,
                checkpoint_loader=_LOADER,
                pretrained={"k400": f"{_ZOO}/{zoo_file}"},
                tags=("video", "classification", "x3d")
                + (("mobile",) if "efficient" in name else ()),
            )
        )
    return specs


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    cfg = "paperzoo.pytorchvideo.recipes"
    runner = "paperzoo.pytorchvideo.reproduce:run"
    return [
        RecipeSpec(
            name="pytorchvideo_tiny",
            config=f"{cfg}:tiny_config",
            runner=runner,
            paper="pytorchvideo",
            variant="tiny",
            description=(
                "X3D-XS from scratch on moving-digits mp4s (12 classes: digit x direction), CPU, "
                "vs a frame-averaged 2D baseline with the same budget, 3 seeds; test top-1 (%)"
            ),
            study=f"{cfg}:tiny_study",
        ),
        RecipeSpec(
            name="pytorchvideo_paper",
            config=f"{cfg}:paper_config",
            runner=runner,
            paper="pytorchvideo",
            variant="paper",
            description="X3D-XS on Kinetics-400 with PySlowFast's official recipe (--data DIR)",
            reference={"top1": 69.12},
        ),
        RecipeSpec(
            name="pytorchvideo_paper_x3d_s",
            config=f"{cfg}:paper_s_config",
            runner=runner,
            paper="pytorchvideo",
            variant="paper_x3d_s",
            description="X3D-S on Kinetics-400 (X3D_S.yaml)",
            reference={"top1": 73.33},
        ),
        RecipeSpec(
            name="pytorchvideo_paper_x3d_m",
            config=f"{cfg}:paper_m_config",
            runner=runner,
            paper="pytorchvideo",
            variant="paper_x3d_m",
            description="X3D-M on Kinetics-400 (X3D_M.yaml)",
            reference={"top1": 75.94},
        ),
        RecipeSpec(
            name="pytorchvideo_paper_x3d_l",
            config=f"{cfg}:paper_l_config",
            runner=runner,
            paper="pytorchvideo",
            variant="paper_x3d_l",
            description="X3D-L on Kinetics-400 (X3D_L.yaml)",
            reference={"top1": 77.44},
        ),
    ]
