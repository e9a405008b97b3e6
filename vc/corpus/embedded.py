"""The embedded default corpus as data: four eSpeak NG voices and the 48 sentences every voice says.

Data only (no imports of project code), so :mod:`vc.config` takes its defaults from here without a cycle.
``params.yaml`` states the same values under ``corpus.embedded`` (tests/test_config.py keeps them equal), and
a params file may replace them (CI's does).
"""

from __future__ import annotations

__all__ = ["EMBEDDED_SENTENCES", "EMBEDDED_VOICES"]

#: name -> eSpeak NG voice (language+variant) and prosody: two low voices and two high (params.yaml notes
#: each one's measured F0).
EMBEDDED_VOICES: dict[str, dict[str, str | int]] = {
    "low1": {"voice": "en-us+m1", "pitch": 20, "range": 50, "rate": 150},
    "low2": {"voice": "en-gb+m2", "pitch": 50, "range": 60, "rate": 185},
    "high1": {"voice": "en-us+f4", "pitch": 50, "range": 50, "rate": 165},
    "high2": {"voice": "en-us+f2", "pitch": 80, "range": 45, "rate": 200},
}

#: The sentences every voice says, in order: utterance ids s001, s002, ...
EMBEDDED_SENTENCES: tuple[str, ...] = (
    "The old boat drifted slowly toward the quiet harbor.",
    "A warm breeze carried the smell of fresh bread.",
    "She painted the fence a bright shade of green.",
    "Our train leaves the station at half past nine.",
    "The children laughed as the puppy chased its tail.",
    "Heavy clouds gathered over the distant hills.",
    "He forgot his umbrella on the crowded bus.",
    "Please bring the blue folder to my office.",
    "The library closes early on Sunday afternoons.",
    "A single candle lit the narrow hallway.",
    "They planted tomatoes along the garden wall.",
    "The river rose quickly after the spring rain.",
    "My brother fixed the bicycle with a borrowed wrench.",
    "The soup needs a little more salt and pepper.",
    "Bright lanterns swayed above the busy market.",
    "We watched the sunset from the top of the tower.",
    "The teacher wrote three questions on the board.",
    "A gentle knock came from the kitchen door.",
    "The museum displays maps from many centuries.",
    "Fresh snow covered the roofs of the village.",
    "The pilot announced a short delay before landing.",
    "Her violin filled the hall with a calm melody.",
    "Two owls called to each other in the night.",
    "The mechanic checked the brakes and the tires.",
    "A stack of letters waited on the wooden table.",
    "The baker rises long before the sun appears.",
    "We followed the path beside the frozen lake.",
    "The kettle whistled while the guests arrived.",
    "His notebook was full of careful drawings.",
    "The festival begins with music in the square.",
    "A small fox slipped under the garden gate.",
    "The engineers tested the bridge for a whole week.",
    "Rain tapped softly against the attic window.",
    "The captain steered the ship through thick fog.",
    "She found a silver coin beneath the bench.",
    "The choir practiced every Thursday evening.",
    "Our neighbors built a tree house for their kids.",
    "The clock tower chimed twelve times at noon.",
    "A long queue formed outside the new bakery.",
    "The farmer counted the sheep before sunset.",
    "Thunder rolled across the valley all night.",
    "He poured cold water into the tall glass.",
    "The students cheered when the bell finally rang.",
    "A red kite danced high above the beach.",
    "The doctor listened carefully to every word.",
    "Morning light spilled across the empty street.",
    "The journey home took longer than we planned.",
    "Every window in the house was open wide.",
)
