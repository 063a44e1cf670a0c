from setuptools import find_packages, setup

# What it takes to run a notebook from a script or a test (nbclient executes it in an ipykernel kernel);
# scipy only for notebook 06's exact Wasserstein distance (an optimal matching), never by minigen/.
RUN_NOTEBOOKS = ["nbformat>=5.7", "nbclient>=0.7", "ipykernel>=6", "scipy>=1.10"]

setup(
    name="minigen",
    version="0.1.0",
    description="Deep generative models (VAEs, GANs) from scratch in NumPy + autograd, small enough to read",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["minigen", "minigen.*"]),
    package_data={"minigen": ["mnist_sample/*.gz", "mnist_sample/README.md", "weights/*.npz", "weights/README.md",
                              "weights/pretrained/*.npz", "weights/pretrained/*.json", "weights/pretrained/README.md",
                              "bands/*.json"]},
    install_requires=["numpy>=1.24", "autograd>=1.6", "matplotlib>=3.6", "tqdm>=4.60", "pooch>=1.6"],
    extras_require={
        # torch is only a reference in tests and benchmarks; 2.13 is the CPU build this project pins.
        "test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6.80", "torch>=2.13,<2.14"],
        "dev": ["ruff>=0.5"],
        # `minigen assign --format notebook` writes notebooks with nbformat; its tests run them with nbclient.
        "notebook": RUN_NOTEBOOKS,
        # the learning path, notebooks/: Jupyter to open them, ipywidgets for the latent-space sliders
        # (without it the notebooks draw static pictures instead).
        "notebooks": RUN_NOTEBOOKS + ["jupyterlab>=4", "ipywidgets>=8"],
    },
    entry_points={"console_scripts": ["minigen=minigen.cli:main"]},
)
