"""Mapping new imagery with a trained run: the application predict.py runs. The method (the
modules at the root) never imports anything here.

    scene.py      a whole scene on disk, read in bands of rows; its statistics; outputs written
    clouds.py     what a Sentinel-2 product could not see (its own masks), on the 10 m grid
    sentinel2.py  a Sentinel-2 product and a DEM stacked into a scene
    tiles.py      a scene mapped tile by tile: mask, probability, quicklook
    quicklook.py  the picture a mapper looks at first
    polygons.py   landslides as polygons; a map checked against an inventory
    change.py     before and after: which landslides are new
    __main__.py   `python -m mapping stack ...`: the tools on their own
"""
