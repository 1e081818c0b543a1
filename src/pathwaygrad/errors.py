"""Exceptions raised for bad input. Their messages name the problem and the fix."""


class UserError(ValueError):
    """Bad input from a user (argument, file, model or data): message says what and how to fix."""


class NoActivationError(UserError):
    """The model calls no activation of the kinds that pathwaygrad was asked to mask."""


class PathwayMismatchError(UserError):
    """A pathway's masks do not fit the activation calls of this model on these inputs."""
