"""Human–object interaction (Sec. 2.2): object categories, synthetic HOI data, object pose
recovery from 3D keypoints and HOI metrics."""
from anylift_jax.hoi.objects import CATEGORIES, ObjectCategory, load_category
from anylift_jax.hoi.pose import object_pose_from_keypoints
from anylift_jax.hoi.synth import SCENARIOS, HoiSequence, hoi_training_clip, make_sequence, render_hoi

__all__ = ["CATEGORIES", "ObjectCategory", "load_category", "object_pose_from_keypoints", "SCENARIOS",
           "HoiSequence", "hoi_training_clip", "make_sequence", "render_hoi"]
