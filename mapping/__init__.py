"""Mapping new imagery with a trained run: the application predict.py runs. The method (the
modules at the root) never imports anything here.

    scene.py      a whole scene on disk, read in bands of rows; its statistics; outputs written
    clouds.py     what a Sentinel-2 product could not see (its own masks), on the 10 m grid
    shadows.py    Level-1C's cloud shadows, from the sun's angles and the infrared
    fringes.py    cloud edges the coarse masks miss, from Fmask's spectral tests
    edges.py      Level-1C's 60 m B1 beside clouds, taken from B2
    cirrus.py     Level-1C's thin cirrus taken out of every band with B10 (on request)
    sentinel2.py  a Sentinel-2 product and a DEM stacked into a scene
    tiles.py      a scene mapped tile by tile: mask, probability, quicklook
    quicklook.py  the picture a mapper looks at first
    polygons.py   landslides as polygons; a map checked against an inventory
    change.py     before and after: which landslides are new
    patches.py    a scene cut into Landslide4Sense patches with an index, and back
    adapt.py      the run refined with the imagery being mapped as its target (--adapt)
    __main__.py   `python -m mapping stack | patches | mosaic`: the tools on their own
"""
