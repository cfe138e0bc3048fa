"""The embedded benchmark: procedurally generated tracking-by-language sequences (LaSOT layout).

Scenes hold several objects from a small vocabulary (shape × colour × size × texture); at
least two distractors share an attribute with the target, so only the sentence singles it out.
Events (full/partial occlusion, exit and re-entry, camera cuts, scale change, fast motion with
blur, noise, illumination change) make whole-frame re-localisation matter.

Public API:
    generate_dataset(out, sequences, seed, size=(W, H), frames=F, split="test") -> stats dict
    dataset_stats(root) -> stats dict
    plan_sequence(seed, index, width, height, frames) -> SequencePlan   (geometry + ground truth)
    SequenceRenderer(plan).frame_rgb(t) -> (H, W, 3) uint8 RGB
    render_scene(seed, index, size) -> (RGB image, box xywh, sentence)   (one still scene)
"""

from mvlm.data.synthetic.dataset import (
    ABSENT_BOX, SPLIT_FILES, attributes_of, dataset_stats, events_of, generate_dataset, meta_of, write_sequence,
)
from mvlm.data.synthetic.plan import ATTRIBUTE_KEYS, SequencePlan, SynthError, plan_sequence
from mvlm.data.synthetic.render import SequenceRenderer
from mvlm.data.synthetic.vocab import COLOURS, SHAPES, SIZES, TEXTURES, ObjectSpec

__all__ = [
    "ABSENT_BOX", "ATTRIBUTE_KEYS", "COLOURS", "SHAPES", "SIZES", "SPLIT_FILES", "TEXTURES", "ObjectSpec",
    "SequencePlan", "SequenceRenderer", "SynthError", "attributes_of", "dataset_stats", "events_of",
    "generate_dataset", "meta_of", "plan_sequence", "render_scene", "write_sequence",
]


def render_scene(seed: int, index: int, size: tuple[int, int] = (256, 192)):
    """One still scene (the first frame of a short sequence): RGB (H, W, 3) uint8, the target's
    box (x, y, w, h) int pixels, and the sentence. For samplers that want single frames."""
    width, height = size
    plan = plan_sequence(seed, index, width, height, frames=16)
    return SequenceRenderer(plan).frame_rgb(0), plan.boxes[0].copy(), plan.sentence
