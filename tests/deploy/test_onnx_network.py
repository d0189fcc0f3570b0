"""The network (backbone, neck, heads) exports to ONNX with a dynamic batch and input size, and
ONNX Runtime reproduces PyTorch's raw head outputs at sizes and batches not used at export.

(The first piece of ONNX deployment: post-processing inside the graph comes next.)"""
from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
import torch

from mmdet_solo.apis import init_detector
from mmdet_solo.models.heads.utils import coord_features

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, 'configs', 'shapes', 'solov2_light_r18_shapes.py')


class Network(torch.nn.Module):
    """img -> the head's outputs, flattened into a tuple of tensors."""

    def __init__(self, detector: torch.nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, img: torch.Tensor):
        outputs = self.detector.forward_heads(self.detector.extract_feat(img))
        flat = []
        for field in outputs:
            flat += list(field) if isinstance(field, (list, tuple)) else [field]
        return tuple(flat)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = init_detector(CONFIG, None, device='cpu', cfg_options={'channels_last': False})
    net = Network(model).eval()
    path = str(tmp_path_factory.mktemp('onnx') / 'net.onnx')
    batch = torch.export.Dim('batch', min=1, max=8)
    h, w = torch.export.Dim('h', min=2, max=64), torch.export.Dim('w', min=2, max=64)
    # a batch of 2: torch.export would fix a dimension of size 1
    torch.onnx.export(net, (torch.randn(2, 3, 128, 160),), path, dynamo=True, opset_version=18,
                      dynamic_shapes={'img': {0: batch, 2: 32 * h, 3: 32 * w}})
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return net, ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


@pytest.mark.parametrize('shape', [(1, 3, 128, 160), (2, 3, 96, 224), (1, 3, 256, 192)])
def test_onnx_runtime_matches_pytorch_at_other_sizes(exported, shape):
    net, session = exported
    img = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.no_grad():
        expected = net(img)
    got = session.run(None, {session.get_inputs()[0].name: img.numpy()})
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == tuple(e.shape)
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-4, atol=1e-4)


def test_coord_features_are_linspace_outside_export():
    x = torch.zeros(1, 1, 5, 7)
    xy = coord_features(x)
    assert torch.equal(xy[0, 0, 0], torch.linspace(-1, 1, 7))
    assert torch.equal(xy[0, 1, :, 0], torch.linspace(-1, 1, 5))
