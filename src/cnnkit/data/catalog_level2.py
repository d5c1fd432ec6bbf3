"""Catalog records, level 2 (intermediate): CIFAR, SVHN, GTSRB, FER-2013, STL-10 and the Kaggle folders.

Facts (files, checksums, classes, published accuracies) from shared/datasets-reference.md.
"""

from __future__ import annotations

from .catalog import DatasetInfo, RemoteFile, register

_KRIZ = "https://www.cs.toronto.edu/~kriz/"
_CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_CIFAR100_FINE = tuple("""apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup
dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion
lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear
pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew
skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger
tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm""".split())
_CIFAR100_COARSE = tuple("""aquatic_mammals fish flowers food_containers fruit_and_vegetables
household_electrical_devices household_furniture insects large_carnivores large_man-made_outdoor_things
large_natural_outdoor_scenes large_omnivores_and_herbivores medium_mammals non-insect_invertebrates people
reptiles small_mammals trees vehicles_1 vehicles_2""".split())

register(
    DatasetInfo(
        name="cifar-10",
        title="CIFAR-10",
        level="intermediate",
        task="classification",
        shape=(3, 32, 32),
        num_classes=10,
        class_names=_CIFAR10_CLASSES,
        train_size=50000,
        test_size=10000,
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        license="none stated (cite Krizhevsky 2009)",
        obtain="download",
        files=(RemoteFile("cifar-10-python.tar.gz", (_KRIZ + "cifar-10-python.tar.gz",),
                          md5="c58f30108f718f92721af3b95e74349a",
                          sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                          size=170498071, extracts_to="cifar-10-batches-py"),),
        reader="cifar",
        aliases=("cifar10", "cifar_10"),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        format="python pickles data_batch_1..5, test_batch, batches.meta (10000x3072 uint8, planar RGB)",
        accuracy=(
            ("human", "~94% (Karpathy, 400 images)"),
            ("simple CNN", "82% without / 89% with augmentation (cuda-convnet)"),
            ("ResNet-class", "ResNet-110 93.57%; WRN-28-10 96.11%"),
            ("SOTA", "99.50% ViT-H/14 (JFT-300M pre-training)"),
        ),
    )
)

_C100_FILE = RemoteFile("cifar-100-python.tar.gz", (_KRIZ + "cifar-100-python.tar.gz",),
                        md5="eb9058c3a382ffc7106e4002c42a8d85", extracts_to="cifar-100-python")
_C100_COMMON = dict(
    level="intermediate", task="classification", shape=(3, 32, 32), train_size=50000, test_size=10000,
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html", license="none stated (cite Krizhevsky 2009)",
    obtain="download", files=(_C100_FILE,), reader="cifar",
    mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
    format="python pickles train, test, meta (fine_labels and coarse_labels)",
)
register(
    DatasetInfo(
        name="cifar-100", title="CIFAR-100 (100 fine classes)", num_classes=100, class_names=_CIFAR100_FINE,
        aliases=("cifar100", "cifar_100"),
        accuracy=(
            ("ResNet-class", "ResNet-34 from scratch 76.68%; WRN-28-10 81.15%"),
            ("SOTA", "96.08% EfficientNet-L2 + SAM (extra pre-training data)"),
        ),
        extra={"labels": "fine"}, **_C100_COMMON,
    )
)
register(
    DatasetInfo(
        name="cifar-100-coarse", title="CIFAR-100, 20 coarse superclasses", num_classes=20,
        class_names=_CIFAR100_COARSE, aliases=("cifar100-coarse", "cifar-20"), parent="cifar-100",
        extra={"labels": "coarse"}, **_C100_COMMON,
    )
)

_SVHN = "http://ufldl.stanford.edu/housenumbers/"
_SVHN_FILES = (
    RemoteFile("train_32x32.mat", (_SVHN + "train_32x32.mat",), md5="e26dedcc434d2e4c54c9b2d4a06d8373",
               sha256="435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8", size=182040794),
    RemoteFile("test_32x32.mat", (_SVHN + "test_32x32.mat",), md5="eb5a983be6a315427106f1b164d9cef3",
               sha256="cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b", size=64275384),
)
_SVHN_EXTRA = RemoteFile("extra_32x32.mat", (_SVHN + "extra_32x32.mat",), md5="a93ce644f1a588dc4d68dda5feec44a7",
                         sha256="a133a4beb38a00fcdda90c9489e0c04f900b660ce8a316a5e854838379a71eb3",
                         size=1329278602)
_SVHN_COMMON = dict(
    level="intermediate", task="classification", shape=(3, 32, 32), num_classes=10,
    class_names=tuple("0123456789"), test_size=26032, homepage="http://ufldl.stanford.edu/housenumbers/",
    license="non-commercial use only", obtain="download", reader="svhn",
    mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
    format="MATLAB .mat: X is 32x32x3xN uint8, y is Nx1 with 10 meaning digit 0",
    accuracy=(
        ("simple CNN", "~95%"),
        ("ResNet-class", "WRN 98.46%"),
        ("SOTA", "~99% (AutoAugment-era papers)"),
    ),
)
register(DatasetInfo(name="svhn", title="SVHN cropped digits (format 2)", train_size=73257, files=_SVHN_FILES,
                     aliases=("svhn-cropped", "svhn_cropped"), **_SVHN_COMMON))
register(DatasetInfo(name="svhn-extra", title="SVHN with the 531,131 extra training digits",
                     train_size=73257 + 531131, files=(*_SVHN_FILES, _SVHN_EXTRA), parent="svhn",
                     aliases=("svhn_extra",), extra={"extra": True},
                     notes="train = train + extra (604,388 images, 1.8 GB in memory).", **_SVHN_COMMON))

_GTSRB = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
_GTSRB_CLASSES = (
    "Speed limit (20km/h)", "Speed limit (30km/h)", "Speed limit (50km/h)", "Speed limit (60km/h)",
    "Speed limit (70km/h)", "Speed limit (80km/h)", "End of speed limit (80km/h)", "Speed limit (100km/h)",
    "Speed limit (120km/h)", "No passing", "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection", "Priority road", "Yield", "Stop", "No vehicles",
    "Vehicles over 3.5 metric tons prohibited", "No entry", "General caution", "Dangerous curve to the left",
    "Dangerous curve to the right", "Double curve", "Bumpy road", "Slippery road", "Road narrows on the right",
    "Road work", "Traffic signals", "Pedestrians", "Children crossing", "Bicycles crossing",
    "Beware of ice/snow", "Wild animals crossing", "End of all speed and passing limits", "Turn right ahead",
    "Turn left ahead", "Ahead only", "Go straight or right", "Go straight or left", "Keep right",
    "Keep left", "Roundabout mandatory", "End of no passing", "End of no passing by vehicles over 3.5 metric tons",
)
register(
    DatasetInfo(
        name="gtsrb",
        title="GTSRB German Traffic Sign Recognition Benchmark",
        level="intermediate",
        task="classification",
        shape=None,
        load_size=(32, 32),
        num_classes=43,
        class_names=_GTSRB_CLASSES,
        train_size=39209,
        test_size=12630,
        homepage="https://benchmark.ini.rub.de/gtsrb_dataset.html",
        license="unconfirmed (cite Stallkamp et al.)",
        obtain="download",
        files=(
            RemoteFile("GTSRB-Training_fixed.zip", (_GTSRB + "GTSRB-Training_fixed.zip",),
                       md5="513f3c79a4c5141765e10e952eaa2478", extracts_to="GTSRB/Training"),
            RemoteFile("GTSRB_Final_Test_Images.zip", (_GTSRB + "GTSRB_Final_Test_Images.zip",),
                       md5="c7e4e6327067d32654124b0fe9e82185", extracts_to="GTSRB/Final_Test"),
            RemoteFile("GTSRB_Final_Test_GT.zip", (_GTSRB + "GTSRB_Final_Test_GT.zip",),
                       md5="fe31e9c9270bbcd7b84b7f21a9d9d9e5", extracts_to="GT-final_test.csv"),
        ),
        reader="gtsrb",
        aliases=("traffic-signs", "gtsrb-43"),
        mean=(0.3403, 0.3121, 0.3214),
        std=(0.2724, 0.2608, 0.2669),
        format="PPM images 15x15 to 250x250 per class folder with ;-separated GT-*.csv "
        "(Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId)",
        accuracy=(
            ("human", "98.81% (phase I)"),
            ("simple CNN", "~93% (LeNet-style)"),
            ("strong CNN", "98.97% multi-scale ConvNet (Sermanet & LeCun)"),
            ("SOTA", "99.46% MCDNN committee (Ciresan et al.)"),
        ),
        notes="Each sign is cropped to its ROI from the CSV and resized to 32x32. Class names from "
        "Udacity's signnames.csv (the archives carry only numbers). Never flipped: a mirrored sign "
        "can be another class.",
    )
)

register(
    DatasetInfo(
        name="fer-2013",
        title="FER-2013 facial expressions (ICML 2013 challenge)",
        level="intermediate",
        task="classification",
        shape=(1, 48, 48),
        num_classes=7,
        class_names=("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"),
        train_size=28709,
        val_size=3589,
        test_size=3589,
        homepage="https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge",
        license="unconfirmed",
        obtain="manual",
        reader="fer2013",
        aliases=("fer2013", "fer"),
        format="CSV emotion,pixels,Usage (pixels: 2304 space-separated ints); also the msambare "
        "image-folder copy train/<class>/, test/<class>/",
        access="Kaggle account + accepted competition rules (or the msambare/fer2013 Kaggle copy)",
        manual_steps="download fer2013.csv (or icml_face_data.csv) from the Kaggle competition, or the "
        "msambare/fer2013 dataset (train/ and test/ folders), and put it into the folder shown below",
        accuracy=(
            ("human", "~65 +/- 5%"),
            ("simple CNN", "~60%"),
            ("strong single CNN", "73.28% VGGNet tuned; 74.14% Residual Masking Network"),
            ("SOTA", "76.82% ensemble"),
        ),
        notes="Official splits from the Usage column: Training, PublicTest (validation), PrivateTest (test). "
        "The msambare folders sort neutral before sad; cnnkit maps them to the CSV label order.",
        extra={"expect": ("fer2013.csv", "fer2013/fer2013.csv", "icml_face_data.csv", "train.csv", "train")},
    )
)

register(
    DatasetInfo(
        name="stl-10",
        title="STL-10",
        level="intermediate",
        task="classification",
        shape=(3, 96, 96),
        num_classes=10,
        class_names=("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"),
        train_size=5000,
        test_size=8000,
        homepage="https://cs.stanford.edu/~acoates/stl10/",
        license="unconfirmed",
        obtain="download",
        files=(RemoteFile("stl10_binary.tar.gz", ("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",),
                          md5="91f7769df0f17e558f3565bffb0c7dfb",
                          sha256="f31fd99273a1acb8609c8db427cebb1de3f71de77758cdc0e22956e1289b9866",
                          size=2640397119, extracts_to="stl10_binary"),),
        reader="stl10",
        aliases=("stl10", "stl_10"),
        mean=(0.4467, 0.4398, 0.4066),
        std=(0.2603, 0.2566, 0.2713),
        format="raw uint8 binaries, column-major within each image, one channel at a time; labels 1-10",
        notes="100,000 unlabeled images (unlabeled_X.bin) are for self-supervised pre-training and are "
        "not loaded. The official protocol trains on 10 folds of 1,000 (fold_indices.txt).",
    )
)

register(
    DatasetInfo(
        name="dogs-vs-cats",
        title="Dogs vs Cats (Kaggle, Asirra)",
        level="intermediate",
        task="classification",
        shape=None,
        load_size=(128, 128),
        num_classes=2,
        class_names=("cat", "dog"),
        train_size=25000,
        homepage="https://www.kaggle.com/c/dogs-vs-cats",
        license="unconfirmed",
        obtain="manual",
        reader="dogs-vs-cats",
        aliases=("cats-vs-dogs", "dogs_vs_cats", "dogsvscats"),
        format="train/cat.<n>.jpg, train/dog.<n>.jpg (label in the file name); or Microsoft's "
        "PetImages/Cat, PetImages/Dog",
        access="Kaggle account + accepted competition rules; the Microsoft release needs none",
        manual_steps="download train.zip from the Kaggle competition and unzip it so that train/cat.0.jpg "
        "exists in the folder shown below, or unzip Microsoft's kagglecatsanddogs zip (PetImages/) there",
        accuracy=(
            ("pre-deep-learning", "82.7%"),
            ("simple CNN from scratch", "~90%-95.5% validation"),
            ("competition winner", "98.9% (Sermanet, OverFeat)"),
        ),
        notes="test1/ has no labels, so cnnkit holds out a stratified 20% of train as the test split. "
        "Microsoft's copy holds ~1,700 corrupt files: they are skipped and counted.",
        extra={"expect": ("train", "PetImages")},
    )
)

register(
    DatasetInfo(
        name="flowers",
        title="Flowers Recognition (Kaggle alxmamaev)",
        level="intermediate",
        task="classification",
        shape=None,
        load_size=(128, 128),
        num_classes=5,
        class_names=("daisy", "dandelion", "rose", "sunflower", "tulip"),
        train_size=4242,
        homepage="https://www.kaggle.com/datasets/alxmamaev/flowers-recognition",
        license="unconfirmed",
        obtain="manual",
        reader="image-folder",
        aliases=("flowers-recognition", "flowers5"),
        format="flowers/<class>/*.jpg, no split",
        access="Kaggle account",
        manual_steps="download the Kaggle dataset and unzip it so that flowers/daisy/ exists in the folder shown below",
        accuracy=(("ResNet-50 transfer", "~74% at 64x64, ~92% at 256x256 input"),),
        notes="No official split: cnnkit holds out a stratified 20% as the test split (fixed seed).",
        extra={"expect": ("flowers",), "test_fraction": 0.2},
    )
)

register(
    DatasetInfo(
        name="intel-image",
        title="Intel Image Classification (natural scenes, Kaggle puneet6060)",
        level="intermediate",
        task="classification",
        shape=(3, 150, 150),
        load_size=(150, 150),
        num_classes=6,
        class_names=("buildings", "forest", "glacier", "mountain", "sea", "street"),
        train_size=14034,
        test_size=3000,
        homepage="https://www.kaggle.com/datasets/puneet6060/intel-image-classification",
        license="unconfirmed",
        obtain="manual",
        reader="image-folder",
        aliases=("intel", "intel-image-classification", "intel-scenes"),
        format="seg_train/seg_train/<class>/*.jpg, seg_test/seg_test/<class>/*.jpg (seg_pred unlabelled)",
        access="Kaggle account",
        manual_steps="download the Kaggle dataset and unzip it so that seg_train/ and seg_test/ exist in "
        "the folder shown below",
        accuracy=(
            ("simple CNN", "85.37% validation (3-layer CNN)"),
            ("ResNet-50 features + MLP", "93.2%"),
        ),
        notes="A few images are not 150x150; they are resized.",
        extra={"expect": ("seg_train",)},
    )
)

register(
    DatasetInfo(
        name="asl-alphabet",
        title="ASL Alphabet (Kaggle grassknoted)",
        level="intermediate",
        task="classification",
        shape=(3, 200, 200),
        load_size=(64, 64),
        num_classes=29,
        class_names=tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + ("del", "nothing", "space"),
        train_size=87000,
        test_size=29,
        homepage="https://www.kaggle.com/datasets/grassknoted/asl-alphabet",
        license="unconfirmed",
        obtain="manual",
        reader="image-folder",
        aliases=("asl_alphabet", "asl"),
        format="asl_alphabet_train/asl_alphabet_train/<class>/*.jpg; flat test folder <class>_test.jpg",
        access="Kaggle account",
        manual_steps="download the Kaggle dataset and unzip it so that asl_alphabet_train/ exists in the "
        "folder shown below",
        accuracy=(("ResNet-34 transfer (fastai)", "99.97% on a split of train (in-distribution only)"),),
        notes="Images are resized to 64x64 so the 87,000 fit the tensor path (1 GB). The official test "
        "set has only 29 images; cnnkit tests on a stratified 10% of train instead. Never flipped.",
        extra={"expect": ("asl_alphabet_train",), "test_fraction": 0.1},
    )
)
