"""Body models (Anny by default, SMPL from a user file), the VPoser pose prior, and batched fitting."""
from anylift_jax.body.model import BodyModel, get_body_model

__all__ = ["BodyModel", "get_body_model"]
