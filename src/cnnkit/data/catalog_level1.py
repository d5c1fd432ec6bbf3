"""Catalog records, level 1 (beginner): the MNIST family and Sign Language MNIST.

Facts (files, checksums, classes, published accuracies) from shared/datasets-reference.md.
"""

from __future__ import annotations

from .catalog import DatasetInfo, RemoteFile, register

_IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_files(mirrors: tuple[str, ...], md5s, sha256s=(None,) * 4, sizes=(None,) * 4) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(n, tuple(u + n for u in mirrors), md5=m, sha256=s, size=z)
        for n, m, s, z in zip(_IDX_NAMES, md5s, sha256s, sizes, strict=True)
    )


register(
    DatasetInfo(
        name="mnist",
        title="MNIST handwritten digits",
        level="beginner",
        task="classification",
        shape=(1, 28, 28),
        num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        train_size=60000,
        test_size=10000,
        homepage="http://yann.lecun.com/exdb/mnist/",
        license="CC BY-SA 3.0 (Keras docs; other sources disagree)",
        obtain="download",
        files=idx_files(
            ("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/"),
            ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
             "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
            ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
             "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
             "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
             "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
            (9912422, 28881, 1648877, 4542),
        ),
        reader="idx",
        aliases=("mnist-digits",),
        mean=(0.1307,),
        std=(0.3081,),
        format="4 gzipped IDX files",
        accuracy=(
            ("simple CNN", "99.06% (Keras simple CNN); ~99.2% for 2-conv nets < 100K params"),
            ("ResNet-class", "99.56% (PreActResNet-18)"),
            ("SOTA", "99.87% ensemble / 99.83% single model (Byerly et al.)"),
        ),
        notes="The LeCun host answers 403/404; cnnkit uses the ossci and CVDF mirrors.",
    )
)

register(
    DatasetInfo(
        name="fashion-mnist",
        title="Fashion-MNIST (Zalando)",
        level="beginner",
        task="classification",
        shape=(1, 28, 28),
        num_classes=10,
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        train_size=60000,
        test_size=10000,
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        license="MIT",
        obtain="download",
        files=idx_files(
            ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
            ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
             "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
            ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
             "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
             "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
             "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
            (26421880, 29515, 4422102, 5148),
        ),
        system_paths=("/usr/share/datasets/fashion-mnist",),
        reader="idx",
        aliases=("fashion_mnist", "fashionmnist", "fmnist"),
        mean=(0.2860,),
        std=(0.3530,),
        format="4 gzipped IDX files (same names and format as MNIST)",
        accuracy=(
            ("human", "83.5%"),
            ("simple CNN", "87.6%-91.6% (2 conv + pooling); ~93.4% (2 conv + BN)"),
            ("ResNet-class", "ResNet18 94.9%; WRN-28-10 95.9% (96.3% + random erasing)"),
            ("best in the upstream table", "WRN40-4 96.7%"),
        ),
        notes="Debian's dataset-fashion-mnist package installs the four files, re-compressed "
        "(their .gz checksums differ from upstream; the decompressed bytes are identical).",
    )
)

register(
    DatasetInfo(
        name="kmnist",
        title="Kuzushiji-MNIST (cursive Japanese hiragana)",
        level="beginner",
        task="classification",
        shape=(1, 28, 28),
        num_classes=10,
        class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        train_size=60000,
        test_size=10000,
        homepage="https://github.com/rois-codh/kmnist",
        license="CC BY-SA 4.0",
        obtain="download",
        files=idx_files(
            ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/", "https://storage.googleapis.com/kuzushiji-mnist/"),
            ("bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
             "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134"),
            sizes=(18165135, 29497, 3041136, 5120),
        ),
        reader="idx",
        aliases=("kuzushiji-mnist", "k-mnist"),
        mean=(0.1918,),
        std=(0.3483,),
        format="4 gzipped IDX files (MNIST names); NumPy .npz copies also published",
        accuracy=(
            ("4-nearest-neighbour", "91.56%"),
            ("simple CNN", "95.12% (Keras simple CNN)"),
            ("ResNet-class", "97.82% (PreActResNet-18)"),
            ("best listed", "98.83% (PreActResNet-18 + Manifold Mixup)"),
        ),
    )
)

_K49 = ("a i u e o ka ki ku ke ko sa shi su se so ta chi tsu te to na ni nu ne no "
        "ha hi fu he ho ma mi mu me mo ya yu yo ra ri ru re ro wa wi we wo n").split() + ["iteration mark"]
_K49_URL = "http://codh.rois.ac.jp/kmnist/dataset/k49/"

register(
    DatasetInfo(
        name="kuzushiji-49",
        title="Kuzushiji-49 (48 hiragana + iteration mark)",
        level="beginner",
        task="classification",
        shape=(1, 28, 28),
        num_classes=49,
        class_names=tuple(_K49),
        train_size=232365,
        test_size=38547,
        homepage="https://github.com/rois-codh/kmnist",
        license="CC BY-SA 4.0",
        obtain="download",
        files=tuple(RemoteFile(n, (_K49_URL + n,)) for n in (
            "k49-train-imgs.npz", "k49-train-labels.npz", "k49-test-imgs.npz", "k49-test-labels.npz")),
        reader="npz",
        aliases=("k49", "kmnist-49"),
        parent="kmnist",
        mean=(0.1918,),
        std=(0.3483,),
        format="NumPy .npz (array under key arr_0); imbalanced classes",
        accuracy=(
            ("simple CNN", "89.25% balanced accuracy (Keras simple CNN)"),
            ("ResNet-class", "96.64% balanced (PreActResNet-18)"),
            ("best listed", "97.33% balanced (+ Manifold Mixup)"),
        ),
        notes="Class order per k49_classmap.csv (romaji). The authors recommend balanced accuracy. "
        "No published checksums.",
    )
)

_DIGITS = tuple("0123456789")
_UPPER = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_MERGED = _DIGITS + _UPPER + tuple("abdefghnqrt")
_EMNIST_FILE = RemoteFile(
    "gzip.zip",
    ("https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
     "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/gzip.zip"),
    md5="58c8d27c78d21e728a6bc7b3cc06412e",
    sha256="fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e",
    size=561753746,
    extracts_to="gzip",
)
_EMNIST_SPLITS = {
    # split: (classes, train, test, accuracy rows)
    "balanced": (_MERGED, 112800, 18800, (
        ("paper baseline", "78.94% (OPIUM)"),
        ("simple CNN", "~88% (LeNet-5 variant); 90.06% (3-conv, 0.4M params)"),
    )),
    "byclass": (_DIGITS + _UPPER + tuple("abcdefghijklmnopqrstuvwxyz"), 697932, 116323, ()),
    "bymerge": (_MERGED, 697932, 116323, ()),
    "letters": (_UPPER, 124800, 20800, (
        ("paper baseline", "~85% (OPIUM)"),
        ("SOTA", "95.96% WaveMixLite; 95.88% VGG-5 + Spinal FC"),
    )),
    "digits": (_DIGITS, 240000, 40000, (("strong CNN", "99.84%"),)),
    "mnist": (_DIGITS, 60000, 10000, ()),
}

for _split, (_classes, _train, _test, _acc) in _EMNIST_SPLITS.items():
    register(
        DatasetInfo(
            name=f"emnist-{_split}",
            title=f"EMNIST {_split} (NIST SD 19 in MNIST format)",
            level="beginner",
            task="classification",
            shape=(1, 28, 28),
            num_classes=len(_classes),
            class_names=_classes,
            train_size=_train,
            test_size=_test,
            homepage="https://www.nist.gov/itl/products-and-services/emnist-dataset",
            license="unconfirmed",
            obtain="download",
            files=(_EMNIST_FILE,),
            reader="emnist",
            aliases=("emnist",) if _split == "balanced" else (f"emnist_{_split}",),
            parent="" if _split == "balanced" else "emnist-balanced",
            mean=(0.1751,),
            std=(0.3332,),
            format="gzip.zip holding gzip/emnist-<split>-*-ubyte.gz IDX files + a mapping.txt; "
            "images stored transposed (cnnkit transposes them back)",
            accuracy=_acc,
            notes=("Letters: labels 1-26 in the files (0 unused); cnnkit shifts them to 0-25 (A/a ... Z/z). "
                   if _split == "letters" else "")
            + "One 536 MiB archive holds all six splits.",
            extra={"split": _split},
        )
    )

register(
    DatasetInfo(
        name="sign-language-mnist",
        title="Sign Language MNIST (static ASL letters, Kaggle datamunge)",
        level="beginner",
        task="classification",
        shape=(1, 28, 28),
        num_classes=24,
        class_names=tuple("ABCDEFGHIKLMNOPQRSTUVWXY"),
        train_size=27455,
        test_size=7172,
        homepage="https://www.kaggle.com/datasets/datamunge/sign-language-mnist",
        license="CC0 1.0 (as shown on the Kaggle page)",
        obtain="manual",
        reader="sign-mnist",
        aliases=("sign-mnist", "sign_mnist", "asl-mnist"),
        format="CSV: header label,pixel1..pixel784; labels 0-24 without 9 (J) and 25 (Z)",
        access="Kaggle account",
        manual_steps="download the dataset from the Kaggle page (Kaggle account; or "
        "`kaggle datasets download datamunge/sign-language-mnist`) and put sign_mnist_train.csv and "
        "sign_mnist_test.csv (or the zip, unpacked) into the folder shown below",
        accuracy=(("simple CNN", "~93%-99.3% (community projects; no paper benchmark)"),),
        notes="J and Z need motion and are absent: labels 0-24 skip 9, so cnnkit remaps them to 24 "
        "contiguous classes A-I, K-Y. Train and test come from the same augmented photos (leakage risk).",
        extra={"expect": ("sign_mnist_train.csv", "sign_mnist_train/sign_mnist_train.csv")},
    )
)
