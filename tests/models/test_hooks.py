"""Step context."""

from models.hooks import current_step, step_scope


def test_step_scope_nests_and_restores():
    assert current_step() == -1
    with step_scope(3):
        assert current_step() == 3
        with step_scope(7):
            assert current_step() == 7
        assert current_step() == 3
    assert current_step() == -1
