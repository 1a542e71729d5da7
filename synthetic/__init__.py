"""The synthetic world: a landscape with landslides and look-alikes (landscape.py), the sky over
it (sky.py), Sentinel-2 products and pre-stacked scenes made from it (product.py), and events
seen before and after (event.py); `python -m synthetic` is its command line. The method never
imports it; refine.py --demo calls landscape.synth once, at its command line's edge.
"""
