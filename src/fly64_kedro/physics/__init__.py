"""Pure numpy physics of the study: ground truth, forward model, scan geometry, seeds.

Nothing here knows about Kedro; every function takes arrays and numbers and returns arrays.
Conventions used throughout the project:

* object pixels are indexed (row, column) = (y, x); a scan position (y, x) is the object
  pixel at the *centre* of its N×N patch, i.e. the patch covers rows ``y - N/2 … y + N/2 - 1``;
* diffraction is far-field intensity ``|fftshift(fft2(probe · patch))|²`` with numpy's
  unnormalised FFT and DC at the centre (pty-chi's convention);
* ``intensity_scale`` s turns that model into expected photon counts: ``E[counts] = s · I``.
"""
