"""Sequential.summary: shapes, parameter counts and receptive fields, checked against
textbook figures and hand-worked LeNet-5 numbers."""

from __future__ import annotations

import pytest
from convpool import nn
from convpool.models import lenet5


def test_fully_connected_net_on_a_picture_has_2405025000_weights(capsys):
    model = nn.Sequential(
        nn.Flatten(),
        nn.Dense(400 * 600, 10000, bias=False),
        nn.Dense(10000, 500, bias=False),
        nn.Dense(500, 50, bias=False),
    )
    summary = model.summary((1, 400, 600))
    assert summary.total_parameters == 2_405_025_000
    assert [row.parameters for row in summary.rows] == [0, 2_400_000_000, 5_000_000, 25_000]
    assert summary.output_shape == (50,)
    assert summary.receptive_field.is_global
    assert summary.receptive_field.size == (400, 600)
    printed = capsys.readouterr().out
    assert "2,405,025,000" in printed and "400x600 (global)" in printed
    assert not any(p.materialized for p in model.parameters())  # nothing was allocated


def test_three_5x5_convolutions_have_75_weights_and_13x13_field():
    convolutions = [nn.Conv2d(1, 1, 5, padding="same", bias=False) for _ in range(3)]
    model = nn.Sequential(*convolutions, nn.Flatten(), nn.Dense(400 * 600, 50, bias=False))
    summary = model.summary((1, 400, 600), show=False)
    conv_rows = summary.rows[:3]
    assert sum(row.parameters for row in conv_rows) == 75
    assert [row.receptive_field.size for row in conv_rows] == [(5, 5), (9, 9), (13, 13)]
    assert all(row.output_shape == (1, 400, 600) for row in conv_rows)
    assert conv_rows[-1].receptive_field.jump == (1, 1)
    assert conv_rows[-1].receptive_field.start == (0, 0)  # 'same': centred on pixel 0
    assert summary.rows[-1].parameters == 240000 * 50
    assert summary.total_parameters == 75 + 240000 * 50


def test_lenet5_summary_on_28x28():
    summary = lenet5(28).summary((1, 28, 28), show=False)
    shapes = [row.output_shape for row in summary.rows]
    assert shapes == [(6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10),
                      (16, 5, 5), (400,), (120,), (120,), (84,), (84,), (10,), (10,)]
    # 6*25+6, 16*6*25+16, 400*120+120, 120*84+84, 84*10+10
    assert summary.total_parameters == 156 + 2416 + 48120 + 10164 + 850
    fields = [(r.receptive_field.size, r.receptive_field.jump, r.receptive_field.start)
              for r in summary.rows[:6]]
    assert fields == [
        ((5, 5), (1, 1), (0.0, 0.0)),      # conv 5x5, padding 2
        ((5, 5), (1, 1), (0.0, 0.0)),      # tanh
        ((6, 6), (2, 2), (0.5, 0.5)),      # 2x2 pool: centre between pixels 0 and 1
        ((14, 14), (2, 2), (4.5, 4.5)),    # conv 5x5 valid: 6 + 4 * 2
        ((14, 14), (2, 2), (4.5, 4.5)),
        ((16, 16), (4, 4), (5.5, 5.5)),
    ]
    assert summary.rows[-1].receptive_field.is_global


def test_lenet5_on_8x8_digits():
    summary = lenet5(8).summary((1, 8, 8), show=False)
    assert summary.rows[2].output_shape == (6, 7, 7)
    assert summary.rows[5].output_shape == (16, 6, 6)
    assert summary.rows[7].parameters == 16 * 36 * 120 + 120
    assert summary.output_shape == (10,)


def test_strided_dilated_window_arithmetic():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, dilation=2, padding=1),
                          nn.MaxPool2d(3, stride=2, padding=1))
    summary = model.summary((1, 32, 32), show=False)
    first, second = (row.receptive_field for row in summary.rows)
    assert first.size == (5, 5) and first.jump == (2, 2) and first.start == (1.0, 1.0)
    assert second.size == (9, 9) and second.jump == (4, 4) and second.start == (1.0, 1.0)
    assert summary.rows[0].output_shape == (1, 15, 15)
    assert summary.rows[1].output_shape == (1, 8, 8)


def test_summary_table_text_and_errors():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.GlobalAvgPool2d(), nn.Softmax())
    text = str(model.summary((3, 16, 16), show=False))
    assert "output shape" in text and "RF size" in text and "Total parameters: 224" in text
    assert "16x16 (global)" in text
    with pytest.raises(ValueError, match="in_channels|expects 3"):
        model.summary((1, 16, 16), show=False)
    with pytest.raises(ValueError, match="output height"):
        nn.Sequential(nn.Conv2d(1, 1, 5)).summary((1, 3, 8), show=False)
    with pytest.raises(ValueError, match="input_shape"):
        model.summary((3, 0, 16), show=False)


def test_summary_of_a_dense_only_net_has_no_receptive_field():
    summary = nn.Sequential(nn.Dense(4, 3), nn.Tanh(), nn.Dense(3, 2)).summary((4,), show=False)
    assert summary.total_parameters == 15 + 8
    assert summary.receptive_field is None
