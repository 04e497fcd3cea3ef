"""OpenCV as the reference projection for tests (imported by the test modules beside it)."""
import cv2
import numpy as np


def project_sequence(points, w2c, K):
    """(T, N, 3) world points through w2c (T, 4, 4) and K (3, 3) or (T, 3, 3) -> (T, N, 2) pixels,
    by `cv2.projectPoints` frame by frame (OpenCV ignores K's skew)."""
    out = []
    for t in range(len(points)):
        Kt = K if K.ndim == 2 else K[t]
        rvec, _ = cv2.Rodrigues(w2c[t, :3, :3].astype(np.float64))
        pix, _ = cv2.projectPoints(points[t].astype(np.float64), rvec, w2c[t, :3, 3].astype(np.float64),
                                   Kt.astype(np.float64), None)
        out.append(pix[:, 0])
    return np.stack(out)
