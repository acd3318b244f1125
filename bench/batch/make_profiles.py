#!/usr/bin/env python3
"""Writes N realistic listing profiles as JSONL for bench/batch.sh.

    python3 bench/batch/make_profiles.py N OUT.jsonl [SEED]

Each line is one profile: {"text": ..., "images": [], "metadata": {"id",
"url", "price", "location", "summary"}}. The ids are distinct
(`bench-000001` ...), the text is 1-2 KB of estate-agent prose assembled from
a fixed pool of sentences with varying figures, so no two texts are equal.
Deterministic for a given SEED (default 1). Standard library only.
"""

import json
import random
import sys

AREAS = [
    ("Redland", "Bristol"), ("Clifton", "Bristol"), ("Bishopston", "Bristol"),
    ("Easton", "Bristol"), ("Southville", "Bristol"), ("Totterdown", "Bristol"),
    ("Cotham", "Bristol"), ("Horfield", "Bristol"), ("Knowle", "Bristol"),
    ("Bedminster", "Bristol"), ("Larkhall", "Bath"), ("Widcombe", "Bath"),
    ("Oldfield Park", "Bath"), ("Keynsham", "Bath and North East Somerset"),
    ("Portishead", "North Somerset"), ("Clevedon", "North Somerset"),
]
KINDS = [
    ("flat", "apartment"), ("maisonette", "maisonette"),
    ("terraced house", "terrace"), ("semi-detached house", "semi"),
    ("detached house", "house"), ("cottage", "cottage"), ("bungalow", "bungalow"),
]
PRICE_STYLES = ["Guide price £{:,}", "Offers over £{:,}", "£{:,}", "Offers in excess of £{:,}"]
OPENERS = [
    "A bright and well-presented {beds} bedroom {kind} in the heart of {area}, moments from the independent shops, cafes and green spaces that make this part of {town} so popular.",
    "Offered to the market with no onward chain, this {beds} bedroom {kind} sits on a quiet residential street in {area} and has been thoughtfully updated by the current owners.",
    "We are delighted to offer this characterful {beds} bedroom {kind} in {area}, a short walk from the station and within the catchment of well-regarded primary and secondary schools.",
    "Set back from the road behind a low stone wall, this {beds} bedroom {kind} in {area} combines period features with a modern, practical layout for family life.",
]
ROOMS = [
    "The ground floor opens with a generous entrance hall with original tiled flooring and a useful under-stairs cupboard.",
    "A bay-fronted sitting room of {m2} square metres has a working wood-burning stove and fitted shelving either side of the chimney breast.",
    "To the rear, the kitchen/dining room was refitted in {year} with shaker-style units, quartz worktops, an integrated dishwasher and space for a range cooker.",
    "Bi-folding doors lead from the dining area onto a south-facing patio, ideal for entertaining on summer evenings.",
    "There is a separate utility room with plumbing for a washing machine and a ground-floor cloakroom with WC and wash basin.",
    "Upstairs, the principal bedroom enjoys far-reaching views across the city and has a range of fitted wardrobes and an en-suite shower room.",
    "The second bedroom is another comfortable double, and bedroom three is currently used as a home office with fibre broadband to the property.",
    "The family bathroom has a freestanding roll-top bath, a separate walk-in shower, a heated towel rail and contemporary tiling.",
    "A loft conversion completed in {year} adds a further room with Velux windows and eaves storage, with building regulations sign-off.",
    "The lower ground floor offers a cellar with good head height, currently used for storage and a workshop, with potential to convert subject to consents.",
]
OUTSIDE = [
    "Outside, the enclosed rear garden is laid mainly to lawn with well-stocked borders, a timber shed and side access to the front.",
    "The west-facing balcony overlooks communal gardens that are maintained by the management company for a modest annual service charge of £{charge:,}.",
    "To the front there is off-street parking for two cars on a block-paved driveway, with an electric vehicle charging point installed in {year}.",
    "A courtyard garden with raised beds and a paved seating area catches the afternoon sun; residents' permit parking is available on the street.",
]
FACTS = [
    "Gas central heating with a combination boiler serviced in {year}; double glazing throughout.",
    "EPC rating {epc}; council tax band {band}.",
    "Tenure: {tenure}.",
    "Approximately {sqft:,} square feet ({m2total} square metres) in all.",
    "Viewing is strictly by appointment through the sole agent; early viewing is highly recommended.",
]
TENURES = ["freehold", "leasehold with {lease} years remaining and a ground rent of £{rent} per annum", "share of freehold"]


def profile(n: int, rng: random.Random) -> dict:
    area, town = rng.choice(AREAS)
    kind, short = rng.choice(KINDS)
    beds = rng.randint(2, 5)
    price = rng.randrange(180_000, 950_000, 2_500)
    fill = {
        "beds": beds, "kind": kind, "area": area, "town": town,
        "m2": rng.randint(14, 32), "year": rng.randint(2012, 2025),
        "charge": rng.randrange(600, 3_000, 50), "epc": rng.choice("ABCDE"),
        "band": rng.choice("ABCDEF"), "sqft": rng.randrange(450, 2_400, 5),
        "lease": rng.randint(85, 990), "rent": rng.choice([0, 50, 150, 250]),
    }
    fill["m2total"] = round(fill["sqft"] / 10.764)
    fill["tenure"] = rng.choice(TENURES).format(**fill)
    sentences = [rng.choice(OPENERS)]
    sentences += rng.sample(ROOMS, rng.randint(4, 7))
    sentences += rng.sample(OUTSIDE, rng.randint(1, 2))
    sentences += rng.sample(FACTS, rng.randint(3, 5))
    text = " ".join(s.format(**fill) for s in sentences)
    # Keep every text within 1-2 KB.
    while len(text.encode()) < 1_024:
        text += " " + rng.choice(ROOMS).format(**fill)
    if len(text.encode()) > 2_048:
        text = text.encode()[:2_040].decode("utf-8", "ignore").rsplit(" ", 1)[0] + "."
    ident = f"bench-{n:06d}"
    return {
        "text": text,
        "images": [],
        "metadata": {
            "id": ident,
            "url": f"https://listings.example/{ident}",
            "price": rng.choice(PRICE_STYLES).format(price),
            "location": f"{area}, {town}",
            "summary": f"{beds} bedroom {short} for sale",
        },
    }


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    count, out = int(sys.argv[1]), sys.argv[2]
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) == 4 else 1)
    with open(out, "w", encoding="utf-8") as f:
        for n in range(1, count + 1):
            f.write(json.dumps(profile(n, rng), ensure_ascii=False, separators=(",", ":")))
            f.write("\n")


if __name__ == "__main__":
    main()
