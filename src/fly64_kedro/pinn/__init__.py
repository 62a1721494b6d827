"""PtychoPINN-style physics-informed network in PyTorch (no Kedro here).

* ``grouping``: positions → groups of C = gridsize² (cKDTree, K-choose-(C−1) oversampling);
* ``physics``: overlap merge/extract and the far-field model, differentiable;
* ``network``: the CNN encoder–decoder, the model G + F, checkpoints;
* ``loss``: Poisson NLL of counts, or MAE of amplitudes;
* ``training``: the training loop; ``inference``: prediction and stitching.
"""
