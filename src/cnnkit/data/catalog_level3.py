"""Catalog records, level 3 (advanced): ImageNet, Places365, and the detection/segmentation/video sets.

The detection, segmentation and video datasets are catalogued so a user learns
what they are and how to get them; `load_dataset` says plainly that cnnkit does
not train on them yet. Facts from shared/datasets-reference.md.
"""

from __future__ import annotations

from .catalog import DatasetInfo, RemoteFile, register

_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

register(
    DatasetInfo(
        name="imagenet",
        title="ImageNet ILSVRC-2012",
        level="advanced",
        task="classification",
        shape=None,
        load_size=(224, 224),
        num_classes=1000,
        train_size=1281167,
        val_size=50000,
        test_size=100000,
        homepage="https://image-net.org/challenges/LSVRC/2012/",
        license="ImageNet Terms of Access (non-commercial research and education)",
        obtain="manual",
        reader="image-folder",
        aliases=("ilsvrc2012", "imagenet-1k", "imagenet1k", "ilsvrc-2012"),
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        format="ILSVRC2012_img_train.tar (1,000 inner class tars), ILSVRC2012_img_val.tar (flat), devkit; "
        "cnnkit reads the prepared image-folder layout train/<wnid>/, val/<wnid>/",
        access="image-net.org account approved by the site; Terms of Access",
        manual_steps="download ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and "
        "ILSVRC2012_devkit_t12.tar.gz from image-net.org, unpack train into train/<wnid>/ and sort val "
        "into val/<wnid>/ (torchvision.datasets.ImageNet(root, split=...) does both), inside the folder "
        "shown below",
        accuracy=(
            ("AlexNet", "56.52% top-1"),
            ("VGG-16", "71.59% (73.36% with BN)"),
            ("ResNet-50", "76.13% (V1 recipe) / 80.86% (V2 recipe)"),
            ("SOTA", "91.0% CoCa (fine-tuned)"),
        ),
        notes="Class index = sorted WNID order (as ImageFolder), not the devkit's ILSVRC2012_ID order. "
        "The official val split is the test split here; validation is held out from train. Streams "
        "from disk (too large for memory).",
        extra={"expect": ("train",), "val_as_test": True},
    )
)

_PLACES = "http://data.csail.mit.edu/places/places365/"
register(
    DatasetInfo(
        name="places365",
        title="Places365-Standard (scene recognition)",
        level="advanced",
        task="classification",
        shape=(3, 256, 256),
        load_size=(224, 224),
        num_classes=365,
        train_size=1803460,
        val_size=36500,
        test_size=328500,
        homepage="http://places2.csail.mit.edu/",
        license="images belong to their owners; models CC BY; terms on the download page",
        obtain="download",
        files=(
            RemoteFile("filelist_places365-standard.tar", (_PLACES + "filelist_places365-standard.tar",),
                       md5="35a0585fee1fa656440f3ab298f8479c", size=67498496,
                       extracts_to="categories_places365.txt"),
            RemoteFile("train_256_places365standard.tar", (_PLACES + "train_256_places365standard.tar",),
                       md5="53ca1c756c3d1e7809517cc47c5561c5", size=26103685120, extracts_to="data_256"),
            RemoteFile("val_256.tar", (_PLACES + "val_256.tar",), md5="e27b17d8d44f4af9a78502beb927f808",
                       size=525158400, extracts_to="val_256"),
        ),
        reader="places365",
        aliases=("places-365", "places"),
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        format="256x256 JPEGs under data_256/<a>/<class>/ and val_256/ with file lists "
        "places365_train_standard.txt / places365_val.txt (path, class index); also accepts "
        "train/<class>/, val/<class>/ folders",
        accuracy=(
            ("ResNet-152 from scratch", "54.74% top-1, 84.98% top-5"),
            ("pre-act ResNet-50", "55.18% top-1, 85.29% top-5"),
        ),
        notes="~30 GB (small images). The official val split is the test split here (test labels are "
        "private). Streams from disk.",
        extra={"val_as_test": True, "expect": ("train",)},  # the user's own train/<class>/ folders count too
    )
)


def _not_trainable(name, title, task, num_classes, classes=(), **kw) -> None:
    register(DatasetInfo(name=name, title=title, level="advanced", task=task, shape=None,
                         num_classes=num_classes, class_names=tuple(classes), obtain=kw.pop("obtain", "manual"),
                         **kw))


_COCO = "http://images.cocodataset.org/"
_COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)
_not_trainable(
    "coco", "COCO 2017 (Common Objects in Context)", "detection", 80, _COCO_CLASSES,
    train_size=118287, val_size=5000, test_size=40670, homepage="https://cocodataset.org/",
    license="annotations CC BY 4.0; images under Flickr terms", obtain="download",
    files=(
        RemoteFile("train2017.zip", (_COCO + "zips/train2017.zip",), size=19336861798,
                   sha256="69a8bb58ea5f8f99d24875f21416de2e9ded3178e903f1f7603e283b9e06d929"),
        RemoteFile("val2017.zip", (_COCO + "zips/val2017.zip",), size=815585330,
                   sha256="4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05"),
        RemoteFile("annotations_trainval2017.zip", (_COCO + "annotations/annotations_trainval2017.zip",),
                   size=252907541, sha256="113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268"),
    ),
    aliases=("coco2017", "ms-coco", "mscoco"),
    format="JPEGs + JSON annotations (boxes [x, y, w, h], polygons/RLE, keypoints, captions); "
    "category ids 1-90 with gaps",
    accuracy=(("small detector", "22.8 box AP (Faster R-CNN MobileNetV3-320)"),
              ("ResNet-class", "37.0 box AP (Faster R-CNN R50-FPN); 46.7 (v2)"),
              ("SOTA", "~66 box AP (test-dev)")),
    notes="Object detection and instance segmentation: cnnkit does not train detectors yet.",
)
_not_trainable(
    "open-images", "Open Images V7", "detection", 600, train_size=9000000, val_size=41620, test_size=125436,
    homepage="https://storage.googleapis.com/openimages/web/index.html",
    license="annotations CC BY 4.0; images listed as CC BY 2.0", aliases=("openimages", "open-images-v7", "oiv7"),
    format="CSV annotation files + JPEGs on Google Cloud / AWS (official downloader.py, or FiftyOne)",
    manual_steps="use the official downloader.py or FiftyOne's load_zoo_dataset('open-images-v7')",
    accuracy=(("YOLOv8", "18.4 (n) to 36.3 (x) mAP50-95 on validation"),),
    notes="Multi-label image-level labels (~20k classes), boxes for 600 classes, masks for 350.",
)
_not_trainable(
    "kinetics-700", "Kinetics-700-2020 (human actions)", "video", 700, train_size=None,
    homepage="https://github.com/cvdfoundation/kinetics-dataset", license="unconfirmed (CC BY 4.0 often stated)",
    aliases=("kinetics", "kinetics700", "k700"),
    format="~10 s YouTube clips; annotation CSVs + CVDF tarballs; root/<split>/<class>/<video>.mp4",
    manual_steps="fetch the tar lists https://s3.amazonaws.com/kinetics/700_2020/{split}/k700_2020_{split}_path.txt "
    "and annotations .../700_2020/annotations/{split}.csv (torchvision.datasets.Kinetics does this)",
    accuracy=(("Kinetics-400 for scale", "R3D-18 63.2%; MViTv2-S 80.8%; InternVideo 91.1%"),),
    notes="Video classification: cnnkit trains image CNNs only.",
)
_not_trainable(
    "cityscapes", "Cityscapes (urban scenes)", "segmentation", 19,
    ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
     "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"),
    train_size=2975, val_size=500, test_size=1525, homepage="https://www.cityscapes-dataset.com/",
    license="custom Terms of Use (MPII)", access="account on cityscapes-dataset.com",
    format="2048x1024 PNG leftImg8bit + gtFine label/instance PNGs; 255 = ignore",
    manual_steps="register, then download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip",
    accuracy=(("strong CNN", "82.1% mIoU (DeepLabv3+, test)"),),
    notes="Semantic segmentation: not trainable with cnnkit yet.",
)
_not_trainable(
    "ade20k", "ADE20K SceneParsing (150 classes)", "segmentation", 150, train_size=20210, val_size=2000,
    homepage="https://groups.csail.mit.edu/vision/datasets/ADE20K/", license="unconfirmed", obtain="download",
    files=(RemoteFile("ADEChallengeData2016.zip", ("http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",),
                      size=967382037, sha256="7ff1be44964418441f542a7cc1e1a650e7dc0fc275f5d23252bc9bbdbc977b29"),),
    aliases=("ade-20k", "ade", "sceneparsing"),
    format="JPEGs + PNG annotations (0 = other, ignored)",
    accuracy=(("Swin/ResNet-class", "Swin-L UperNet 53.5; Mask2Former Swin-L 57.3-57.7 mIoU"),
              ("SOTA", "62.9 mIoU InternImage-H")),
    notes="Semantic segmentation: not trainable with cnnkit yet.",
)
_VOC = "https://thor.robots.ox.ac.uk/pascal/VOC/"
_not_trainable(
    "pascal-voc", "PASCAL VOC 2007/2012", "detection", 20,
    ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
     "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"),
    train_size=11530, homepage="http://host.robots.ox.ac.uk/pascal/VOC/", license="Flickr terms (unconfirmed)",
    obtain="download",
    files=(RemoteFile("VOCtrainval_11-May-2012.tar", (_VOC + "voc2012/VOCtrainval_11-May-2012.tar",),
                      md5="6cd6e144f989b92b3379bac3b3de84fd", size=1999639040),
           RemoteFile("VOCtrainval_06-Nov-2007.tar", (_VOC + "voc2007/VOCtrainval_06-Nov-2007.tar",),
                      md5="c52e279531787c972589f7e41ab4ae64", size=460032000),
           RemoteFile("VOCtest_06-Nov-2007.tar", (_VOC + "voc2007/VOCtest_06-Nov-2007.tar",),
                      md5="b6e924de25625d8de591ea690078ad9f", size=451020800)),
    aliases=("voc", "voc2012", "voc2007", "pascal"),
    format="VOCdevkit/VOC20XX: JPEGImages, Annotations (XML boxes), SegmentationClass PNGs (255 = void)",
    accuracy=(("segmentation", "89.0% mIoU DeepLabv3+ (VOC2012 test)"),
              ("detection", "~0.88 mAP top detectors")),
    notes="Detection and segmentation (2007 trainval 5,011, test 4,952): not trainable with cnnkit yet.",
)
_not_trainable(
    "lsun", "LSUN scenes", "classification", 10,
    ("bedroom", "bridge", "church_outdoor", "classroom", "conference_room", "dining_room", "kitchen",
     "living_room", "restaurant", "tower"),
    test_size=10000, homepage="https://github.com/fyu/lsun", license="unconfirmed",
    aliases=("lsun-scenes",),
    format="JPEG (short side 256) inside one LMDB database per category and split",
    manual_steps="download.py from github.com/fyu/lsun fetches http://dl.yf.io/lsun/scenes/<category>_{train,val}_lmdb.zip "
    "(bedroom train alone is 46 GB)",
    notes="Scene classification stored in LMDB (needs the lmdb package): cnnkit has no LMDB reader yet; "
    "mostly used for generative models today.",
)
_not_trainable(
    "youtube-8m", "YouTube-8M (2018)", "video", 3862, train_size=None,
    homepage="https://research.google.com/youtube8m/", license="CC BY 4.0",
    aliases=("yt8m", "youtube8m"),
    format="precomputed features only (RGB 1024-d + audio 128-d per second) in TFRecord shards: no pixels",
    manual_steps="the official downloader script at research.google.com/youtube8m/download.html",
    notes="Multi-label video classification on features: no images, so no CNN to train on pixels.",
)
