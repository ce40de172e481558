from paperzoo.core import list_models, list_papers


def test_registered():
    assert "lightfusion" in list_papers()
    assert "lightfusion_base" in list_models("lightfusion*")
