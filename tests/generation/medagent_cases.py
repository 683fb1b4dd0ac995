"""Short original case studies used by the engine tests (written for these tests, no exam text)."""

DEPRESSION = (
    "A 34-year-old woman visits her family doctor because of low mood for the past two months. "
    "She reports waking at 4 am most nights and being unable to fall back asleep. "
    "She has lost interest in painting, which she used to enjoy. "
    "She says she feels worthless and has trouble concentrating at work. "
    "Her appetite has decreased and she has lost 4 kg. Her mother had depression. "
    "Her temperature is 36.8 C, blood pressure is 118/76 mm Hg, and pulse is 72/min."
)

PANIC = (
    "A 27-year-old man comes to the clinic after three sudden episodes of a racing heart, chest tightness "
    "and shaking in the last month. During each episode he was convinced he was going to die. "
    "The episodes peak within ten minutes and then fade. "
    "He now avoids the underground train because he fears another attack there. "
    "He drinks four cups of coffee a day. His pulse is 88/min and blood pressure is 126/80 mm Hg."
)

VAGUE = (
    "A 45-year-old accountant says that things have not felt right lately. "
    "He finds it hard to describe what is wrong. He lives alone with his dog."
)

ALCOHOL = (
    "A 52-year-old man is brought in by his wife, who is worried about his drinking. "
    "He drinks about eight beers every evening and sometimes starts in the morning to stop his hands shaking. "
    "He has missed work several times in the past month because of hangovers. "
    "He has tried to cut down twice without success. He feels guilty about how much he drinks. "
    "His blood pressure is 148/94 mm Hg and his pulse is 96/min."
)

ALL = {"depression": DEPRESSION, "panic": PANIC, "vague": VAGUE, "alcohol": ALCOHOL}
