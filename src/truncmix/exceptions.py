"""Warnings and errors that truncmix raises."""

from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning


class ConvergenceWarning(_SklearnConvergenceWarning):
    """The fit stopped at ``max_iter`` before the free energy settled."""


class DegenerateComponentWarning(UserWarning):
    """A component lost all its points and was re-seeded or removed."""


class FreeEnergyDecreaseWarning(UserWarning):
    """The free energy went down by more than rounding (should not happen)."""


class FitInterruptedWarning(UserWarning):
    """The fit was interrupted (Ctrl-C); the best model so far was kept."""


class ModelFileError(ValueError):
    """A model file is missing, corrupt, or not a truncmix model."""


class DroppedRowsWarning(UserWarning):
    """``missing="drop"`` left rows holding NaN or infinite values out; ``n_dropped`` counts them."""

    def __init__(self, message, n_dropped=0):
        super().__init__(message)
        self.n_dropped = n_dropped
