"""Shapes, paper widths and conditioning of the StarGAN-VC2 networks (tiny widths unless stated)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vc.config import DiscriminatorConfig, GeneratorConfig, ModelConfig
from vc.stargan import layers
from vc.stargan.layers import (
    CodeConcatConv,
    ConditionalInstanceNorm,
    InstanceNorm,
    PixelShuffle1d,
    PixelShuffle2d,
    ThinConv2d,
)
from vc.stargan.networks import Discriminator, DomainClassifier, Generator, build_models

NUM_SPEAKERS = 3
TOPOLOGIES = ["2-1-2d", "2d", "1d"]
G_CONDITIONINGS = ["cin_source_target", "cin_target", "concat"]
D_CONDITIONINGS = ["source_target", "target", "classifier"]


def make_args(**overrides: Any) -> dict[str, Any]:
    """Generator keyword arguments: the config section's fields at a tiny width (residual 2 x channels)."""
    tiny = {"channels": 4, "res_blocks": 2, "res_channels": None}
    return {**GeneratorConfig().model_dump(), **tiny, **overrides}


def make_d_args(**overrides: Any) -> dict[str, Any]:
    """Discriminator keyword arguments: the config section's fields at a tiny width, sum pooling (paper)."""
    tiny = {"channels": 4, "classifier_channels": 4, "pooling": "sum"}
    return {**DiscriminatorConfig().model_dump(), **tiny, **overrides}


def codes(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randint(0, NUM_SPEAKERS, (batch,), generator=gen),
        torch.randint(0, NUM_SPEAKERS, (batch,), generator=gen),
    )


@pytest.mark.parametrize("frames", [32, 100, 128, 131])
@pytest.mark.parametrize("dim", [24, 35, 36])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_generator_output_shape_equals_input_shape(topology: str, dim: int, frames: int) -> None:
    g = Generator(NUM_SPEAKERS, dim, **make_args(topology=topology))
    x = torch.randn(2, dim, frames)
    y = g(x, *codes(2))
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("conditioning", G_CONDITIONINGS)
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_generator_every_conditioning_runs(topology: str, conditioning: str) -> None:
    g = Generator(NUM_SPEAKERS, 35, **make_args(topology=topology, conditioning=conditioning))
    x = torch.randn(2, 35, 131)
    assert g(x, *codes(2)).shape == x.shape


def test_config_sections_map_onto_constructors() -> None:
    g = Generator(NUM_SPEAKERS, 35, **GeneratorConfig(channels=4, res_blocks=1).model_dump())
    d = Discriminator(NUM_SPEAKERS, 35, **DiscriminatorConfig(channels=4).model_dump())
    x = torch.randn(1, 35, 40)
    assert g(x, *codes(1)).shape == x.shape
    assert d(x, *codes(1))[0].shape == (1,)


@pytest.mark.parametrize(
    ("network", "section", "args"),
    [(Generator, GeneratorConfig, make_args), (Discriminator, DiscriminatorConfig, make_d_args)],
)
def test_constructors_take_every_setting_from_their_config_section(
    network: type, section: type, args: Callable[..., dict[str, Any]]
) -> None:
    """No defaults of their own (one set of defaults: the config's): every keyword is a section field."""
    params = inspect.signature(network).parameters.values()
    keywords = {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords == set(section.model_fields)
    assert all(p.default is inspect.Parameter.empty for p in params)
    without_channels = {k: v for k, v in args().items() if k != "channels"}
    with pytest.raises(TypeError, match="channels"):
        network(NUM_SPEAKERS, 35, **without_channels)
    classifier = inspect.signature(DomainClassifier).parameters["channels"]
    assert classifier.kind is inspect.Parameter.KEYWORD_ONLY and classifier.default is inspect.Parameter.empty


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="topology"):
        Generator(NUM_SPEAKERS, 35, **make_args(topology="3d"))
    with pytest.raises(ValueError, match="conditioning"):
        Discriminator(NUM_SPEAKERS, 35, **make_d_args(conditioning="pair"))
    with pytest.raises(ValueError, match=r"\(B, 35, T\)"):
        Generator(NUM_SPEAKERS, 35, **make_args())(torch.randn(1, 36, 32), *codes(1))


@pytest.mark.parametrize("frames", [32, 131])
@pytest.mark.parametrize("dim", [24, 35])
@pytest.mark.parametrize("conditioning", D_CONDITIONINGS)
def test_discriminator_shapes(conditioning: str, dim: int, frames: int) -> None:
    d = Discriminator(NUM_SPEAKERS, dim, **make_d_args(conditioning=conditioning))
    logits, features = d(torch.randn(3, dim, frames), *codes(3))
    assert logits.shape == (3,)
    assert [f.shape[1] for f in features] == [4, 8, 16, 32, 32]
    assert all(f.shape[0] == 3 for f in features)


def test_domain_classifier_shape() -> None:
    c = DomainClassifier(NUM_SPEAKERS, 24, channels=4)
    assert c(torch.randn(2, 24, 32)).shape == (2, NUM_SPEAKERS)


@pytest.mark.parametrize("conditioning", D_CONDITIONINGS)
def test_build_models_builds_classifier_only_for_classifier_conditioning(conditioning: str) -> None:
    cfg = ModelConfig(
        generator=GeneratorConfig(channels=4, res_blocks=1),
        discriminator=DiscriminatorConfig(conditioning=conditioning, channels=4, classifier_channels=6),
    )
    g, d, c = build_models(NUM_SPEAKERS, 35, cfg)
    assert isinstance(g, Generator)
    assert isinstance(d, Discriminator)
    if conditioning == "classifier":
        assert isinstance(c, DomainClassifier)
        assert c.linear.in_features == 6
    else:
        assert c is None


def _num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_generator_paper_widths() -> None:
    """Fig. 2 at channels=128, res_blocks=9, D=36: widths before GLU are twice those after."""
    g = Generator(NUM_SPEAKERS, 36, **make_args(channels=128, res_blocks=9))
    assert g.input.conv.conv.weight.shape == (256, 1, 5, 15)  # 128 after GLU
    assert g.down[0].conv.conv.weight.shape == (512, 128, 5, 5)  # 256 after GLU, stride 2
    assert g.down[1].conv.conv.weight.shape == (512, 256, 5, 5)
    assert g.to_1d is not None and g.to_1d.conv.conv.weight.shape == (256, 2304, 1)  # 2304 = 256 * 36 / 4
    assert len(g.res) == 9
    assert all(block.conv.conv.weight.shape == (512, 256, 5) for block in g.res)  # 512 before GLU
    assert g.to_2d is not None and g.to_2d.conv.conv.weight.shape == (2304, 256, 1)
    assert g.up[0].conv.conv.weight.shape == (1024, 256, 5, 5)  # 1024 -> PS 256 -> GLU 128
    assert g.up[1].conv.conv.weight.shape == (512, 128, 5, 5)  # 512 -> PS 128 -> GLU 64
    assert g.output.conv.weight.shape == (1, 64, 5, 15)
    assert 19e6 < _num_params(g) < 22e6

    widths: dict[str, int] = {}
    for name in ["input", "down.0", "down.1", "to_1d", "res.8", "to_2d", "up.0", "up.1"]:
        module = g.get_submodule(name)
        module.register_forward_hook(lambda _m, _i, out, name=name: widths.__setitem__(name, out.shape[1]))
    with torch.no_grad():
        g(torch.randn(1, 36, 16), *codes(1))
    assert widths == {
        "input": 128,
        "down.0": 256,
        "down.1": 256,
        "to_1d": 256,
        "res.8": 256,
        "to_2d": 2304,
        "up.0": 128,
        "up.1": 64,
    }


def test_discriminator_paper_widths() -> None:
    """Fig. 3 at channels=128: 128, 256, 512, 1024, 1024 after GLU; kernels 3x3 and a final 1x5."""
    d = Discriminator(NUM_SPEAKERS, 36, **make_d_args(channels=128))
    shapes = [tuple(block.conv.conv.weight.shape) for block in d.blocks]
    assert shapes == [
        (256, 1, 3, 3),
        (512, 128, 3, 3),
        (1024, 256, 3, 3),
        (2048, 512, 3, 3),
        (2048, 1024, 1, 5),
    ]
    assert d.embed.weight.shape == (NUM_SPEAKERS**2, 1024)
    assert 21e6 < _num_params(d) < 25e6


def _randomize_conditioning(g: Generator) -> None:
    """Make the CIN maps far from their near-identity initialisation, so that their effect is large."""
    with torch.no_grad():
        for module in g.modules():
            if isinstance(module, ConditionalInstanceNorm):
                module.affine.weight.normal_(std=0.5)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("conditioning", G_CONDITIONINGS)
def test_generator_conditions_on_the_right_codes(conditioning: str, topology: str) -> None:
    torch.manual_seed(0)
    g = Generator(NUM_SPEAKERS, 24, **make_args(conditioning=conditioning, topology=topology))
    _randomize_conditioning(g)
    x = torch.randn(2, 24, 32)
    zeros, ones, twos = (torch.full((2,), i) for i in range(3))
    with torch.no_grad():
        base = g(x, zeros, twos)
        other_source = g(x, ones, twos)
        other_target = g(x, zeros, ones)
    assert not torch.allclose(base, other_target, atol=1e-4)
    if conditioning == "cin_source_target":
        assert not torch.allclose(base, other_source, atol=1e-4)
    else:
        assert torch.equal(base, other_source)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("conditioning", G_CONDITIONINGS)
def test_concat_conditioning_feeds_the_code_to_every_convolution(topology: str, conditioning: str) -> None:
    g = Generator(NUM_SPEAKERS, 24, **make_args(conditioning=conditioning, topology=topology))
    convs = [m for m in g.modules() if isinstance(m, CodeConcatConv)]
    expected = NUM_SPEAKERS if conditioning == "concat" else 0
    assert convs and all(conv.cond_channels == expected for conv in convs)
    all_convs = [m for m in g.modules() if isinstance(m, nn.Conv1d | nn.Conv2d)]
    assert len(all_convs) == len(convs)  # no convolution bypasses the conditioning wrapper
    cins = [m for m in g.modules() if isinstance(m, ConditionalInstanceNorm)]
    assert len(cins) == (0 if conditioning == "concat" else 2)


def test_conditional_instance_norm_starts_near_plain_instance_norm() -> None:
    torch.manual_seed(0)
    cin = ConditionalInstanceNorm(8, 6)
    x = torch.randn(2, 8, 20)
    code = F.one_hot(torch.tensor([1, 4]), 6).float()
    assert torch.allclose(cin(x, code), F.instance_norm(x), atol=0.2)


@pytest.mark.parametrize("conditioning", D_CONDITIONINGS)
def test_discriminator_projection_conditions_on_the_right_codes(conditioning: str) -> None:
    torch.manual_seed(0)
    d = Discriminator(NUM_SPEAKERS, 24, **make_d_args(conditioning=conditioning))
    x = torch.randn(2, 24, 32)
    zeros, ones, twos = (torch.full((2,), i) for i in range(3))
    with torch.no_grad():
        base, base_features = d(x, zeros, twos)
        other_source, source_features = d(x, ones, twos)
        other_target, _ = d(x, zeros, ones)
    assert all(torch.equal(a, b) for a, b in zip(base_features, source_features, strict=True))
    assert not torch.allclose(base, other_target)
    if conditioning == "source_target":
        assert not torch.allclose(base, other_source)
    else:
        assert torch.equal(base, other_source)


def test_pixel_shuffle_1d_order() -> None:
    x = torch.randn(2, 6, 5)
    y = PixelShuffle1d(3)(x)
    assert y.shape == (2, 2, 15)
    for c in range(2):
        for i in range(3):
            assert torch.equal(y[:, c, i::3], x[:, c * 3 + i])


@pytest.mark.parametrize("shape", [(3, 5, 7), (3, 5, 6, 7)])
def test_instance_norm_is_torchs(shape: tuple[int, ...]) -> None:
    """The group-norm route gives torch's affine instance norm: parameters, state-dict keys, output and
    every gradient."""
    torch.manual_seed(0)
    ours = InstanceNorm(shape[1])
    theirs = (nn.InstanceNorm1d if len(shape) == 3 else nn.InstanceNorm2d)(shape[1], affine=True)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    torch.testing.assert_close(ours.state_dict(), theirs.state_dict())  # weight 1, bias 0 at first
    with torch.no_grad():
        ours.weight.normal_()
        ours.bias.normal_()
    theirs.load_state_dict(ours.state_dict())
    x1 = (3 * torch.randn(shape) + 1).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    y1, y2 = ours(x1), theirs(x2)
    torch.testing.assert_close(y1, y2)
    grad = torch.randn(shape)
    y1.backward(grad)
    y2.backward(grad)
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad)
    torch.testing.assert_close(ours.bias.grad, theirs.bias.grad)


def test_pixel_shuffle_2d_is_torchs() -> None:
    x1 = torch.randn(2, 12, 3, 5, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    y1, y2 = PixelShuffle2d(2)(x1), nn.PixelShuffle(2)(x2)
    assert y1.shape == (2, 3, 6, 10)
    assert torch.equal(y1, y2)
    grad = torch.randn_like(y1)
    y1.backward(grad)
    y2.backward(grad)
    assert torch.equal(x1.grad, x2.grad)


@pytest.mark.parametrize("amx", [True, False])
def test_thin_conv_in_bfloat16_takes_the_tiles_where_there_are_some(amx: bool, monkeypatch) -> None:
    """Under bf16 autocast on a CPU with AMX tiles the layer is the plain bf16 convolution (bit for bit);
    without tiles it is the fp32 FFT route, within bf16 rounding of it; in fp32 the FFTs either way."""
    monkeypatch.setattr(layers, "has_amx_tiles", lambda: amx)
    torch.manual_seed(0)
    thin = ThinConv2d(8, 1, (5, 15), padding=(2, 7))
    plain = nn.Conv2d(8, 1, (5, 15), padding=(2, 7))
    plain.load_state_dict(thin.state_dict())
    x = torch.randn(2, 8, 9, 20)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        y, expected = thin(x), plain(x)
    assert y.dtype == (torch.bfloat16 if amx else torch.float32)
    if amx:
        assert torch.equal(y, expected)
    else:
        torch.testing.assert_close(y, expected.float(), atol=0.05, rtol=0.02)
    with torch.no_grad():
        assert thin(x).dtype == torch.float32
        torch.testing.assert_close(thin(x), plain(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("out_channels", "kernel"), [(1, (5, 15)), (2, (3, 3)), (1, (1, 5))])
@pytest.mark.parametrize("in_channels", [5, ThinConv2d.FFT_MAX_CHANNELS + 1])  # the FFT and fold routes
def test_thin_conv_matches_conv2d(out_channels: int, kernel: tuple[int, int], in_channels: int) -> None:
    """Both CPU routes and the plain convolution agree in output and in every gradient."""
    torch.manual_seed(0)
    thin = ThinConv2d(in_channels, out_channels, kernel, padding=(kernel[0] // 2, kernel[1] // 2))
    plain = nn.Conv2d(in_channels, out_channels, kernel, padding=(kernel[0] // 2, kernel[1] // 2))
    plain.load_state_dict(thin.state_dict())
    x1 = torch.randn(2, in_channels, 9, 13, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    y1, y2 = thin(x1), plain(x2)
    torch.testing.assert_close(y1, y2, atol=1e-5, rtol=1e-4)
    grad = torch.randn_like(y1)
    y1.backward(grad)
    y2.backward(grad)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(thin.weight.grad, plain.weight.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(thin.bias.grad, plain.bias.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("topology", ["2-1-2d", "2d", "1d"])
def test_residual_width_is_its_own_param(topology: str) -> None:
    wide = Generator(NUM_SPEAKERS, 35, **make_args(topology=topology, res_channels=24))
    assert all(block.conv.conv.in_channels == 24 for block in wide.res)
    x = torch.randn(2, 35, 64)
    assert wide(x, *codes(2)).shape == x.shape
    default = Generator(NUM_SPEAKERS, 35, **make_args(topology=topology))
    assert all(block.conv.conv.in_channels == 8 for block in default.res)  # 2 * channels, as in the paper


def test_mean_pooling_is_sum_pooling_scaled_by_the_map_size() -> None:
    torch.manual_seed(0)
    summed = Discriminator(NUM_SPEAKERS, 35, **make_d_args(pooling="sum"))
    mean = Discriminator(NUM_SPEAKERS, 35, **make_d_args(pooling="mean"))
    mean.load_state_dict(summed.state_dict())
    x = torch.randn(3, 35, 64)
    out_sum, feats = summed(x, *codes(3))
    out_mean, _ = mean(x, *codes(3))
    size = feats[-1].shape[2] * feats[-1].shape[3]
    bias = summed.linear.bias
    torch.testing.assert_close((out_sum - bias) / size, out_mean - bias)
    with pytest.raises(ValueError, match="pooling"):
        Discriminator(NUM_SPEAKERS, 35, **make_d_args(pooling="max"))


@pytest.mark.parametrize("topology", ["2-1-2d", "2d", "1d"])
def test_upsampling_reading_sets_the_widths_after_the_pixel_shuffle(topology: str) -> None:
    """halve: a GLU halves the shuffled width (channels, channels // 2); keep: h * sigmoid(h) keeps it
    (2 * channels, channels). Both map (B, D, T) to (B, D, T)."""
    x, src, tgt = torch.randn(2, 35, 37), torch.tensor([0, 1]), torch.tensor([2, 0])
    widths = {}
    for reading in ("halve", "keep"):
        g = Generator(NUM_SPEAKERS, 35, **make_args(topology=topology, channels=8, upsampling=reading))
        seen = []
        hooks = [b.register_forward_hook(lambda _m, _i, out, s=seen: s.append(out.shape[1])) for b in g.up]
        assert g(x, src, tgt).shape == x.shape
        for hook in hooks:
            hook.remove()
        widths[reading] = seen
    assert widths == {"halve": [8, 4], "keep": [16, 8]}
    with pytest.raises(ValueError, match="unknown upsampling 'wide'"):
        Generator(NUM_SPEAKERS, 35, **make_args(upsampling="wide"))
