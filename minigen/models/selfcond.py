"""The self-conditioned GAN (Liu et al. 2020, "Diverse Image Generation via Self-Conditioned
GANs", CVPR): a conditional GAN told each image's *cluster* instead of its class, the clusters
found in the training images themselves, so no label is used.

    training   cluster the training images once (k-means, minigen.clusters); train a conditional
               GAN (minigen.models.conditional) on (image, cluster) pairs: D asks "is x a real image of
               cluster c?", so G must draw every cluster, each in its own style.
    sampling   draw a cluster c with its share of the training images, then G(z, c): the mixture
               over clusters is a model of the unlabelled data, as an unconditional GAN's is.

Why it helps: an unconditional D judges a 3 against all digits at once; one told the cluster
compares it with its neighbours, which is what made the labelled conditional DCGAN far better
than the unconditional one on the same nets (README, GANs). k-means in pixel space puts ~63 % of
MNIST's training images in a cluster whose majority digit is theirs (10 clusters); Liu et al.
cluster D's features instead and recluster as D learns, which this module does not: one fixed
clustering of the pixels, computed before the first step, is enough on MNIST and costs seconds.

`minigen train dcgan --set clusters=10` builds it on DCGAN's nets (minigen.models.dcgan).
"""
import numpy as onp

from minigen import clusters as kmeans_clusters
from minigen.models.conditional import ConditionalGAN

CLUSTER_SEED = 0  # k-means' own seed: a resumed run (and every rerun) finds the same clusters


class SelfConditionedGAN(ConditionalGAN):
    """A ConditionalGAN over n_clusters clusters of its training images (module docstring).

    state["clusters"]["shares"]: (n_clusters,) each cluster's share of the training images,
    set by training_arrays() and checkpointed with the run, so a loaded model samples without the data.
    Other arguments: ConditionalGAN's.
    """

    uses_labels = False  # trained on its clusters, never the dataset's labels

    def __init__(self, generator, discriminator, latent, data_shape, n_clusters, label_input="planes"):
        super().__init__(generator, discriminator, latent, data_shape, n_classes=n_clusters,
                         label_input=label_input)
        self.state["clusters"] = {"shares": onp.full(self.n_classes, 1 / self.n_classes, onp.float32)}

    def training_arrays(self, x, y):
        """What the training loop draws minibatches from: (images (N, *data_shape), their clusters (N,)
        ints in [0, n_clusters)), by k-means on the pixels; y is not used. Records each cluster's share
        in state."""
        _, clusters = kmeans_clusters.kmeans(x, self.n_classes, onp.random.default_rng(CLUSTER_SEED))
        shares = onp.bincount(clusters, minlength=self.n_classes) / len(clusters)
        self.state["clusters"]["shares"] = shares.astype(onp.float32)
        return x, clusters

    def sample_labels(self, rng, n):
        """Clusters for G: drawn with the training images' shares (n,)."""
        shares = onp.asarray(self.state["clusters"]["shares"], dtype=onp.float64)
        return rng.choice(self.n_classes, size=n, p=shares / shares.sum())

    def sample(self, params, rng, n, y=None, state=None):
        """n samples of the mixture: clusters by their shares (y: (n,) clusters to ask for instead)."""
        return super().sample(params, rng, n, self.sample_labels(rng, n) if y is None else y, state)
