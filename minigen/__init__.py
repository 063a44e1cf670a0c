"""minigen: deep generative models from scratch in NumPy + autograd.

Modules, from the bottom up: each imports only modules listed before it, never one
after it, not even inside a function (tests/test_layering.py reads this list and
checks every import of every module against it). A helper that two modules need
lives in the lower one's layer or below.

    allocator           glibc's malloc told to keep freed memory for the next training step
    tree                parameter trees: their arrays in one fixed order
    flat                one contiguous buffer behind an optimiser's parameter tree
    autograd_patches    float32 gradients from autograd's mean, var, std, max, min (process-wide)
    backprop            hand-written VJPs: dense layer, batch norm in training mode
    im2col              the convolutions' memory layout: im2col's columns, col2im, channel rows
    ops                 convolutions, stable logistic functions, one_hot
    init                initialisers
    nn                  layers as (init, apply) pairs, Sequential
    optim               SGD, RMSprop, Adam, AdamW, updating parameters in place
    averaging           the averaged generator of a GAN: weights' moving average, its batch-norm statistics
    autodiff            value_and_grad over a parameter tree
    gradcheck           finite-difference gradients
    losses              KL, likelihoods, ELBO, IWAE bound; the GAN losses
    clusters            k-means: clusters of unlabelled data
    data                MNIST (checksummed), 2-D mixtures, minibatches
    checkpoint          parameters to .npz and back, atomically, without pickle
    viz                 image grids, curves, scatter plots (matplotlib figures; no backend chosen)
    runlock             one writer per run directory (a lock file with pid and host)
    interop             layer stacks to torch.nn and back (torch imported only when called)
    models.trainable    what a model hands the training loop; the guarded gradient step
    models.classifier   the MNIST classifier whose features the FID uses
    models.vae          one module per model family: networks, loss, train step, sampler
    models.partial_vae  q(z | observed pixels, mask) against a trained VAE's fixed decoder
    models.cvae
    models.m2
    models.semisupervised   M2 trained with a few labels: the labelled set, the step, `minigen train m2`
    models.m1m2         M1+M2: M2 on the features of a VAE trained first (the active units of q(z1|x))
    models.gan_options  a GAN recipe's options (--set smooth, gp, clip, beta1), each Recipe -> Recipe
    models.gan
    models.conditional  the conditional GAN: G(z, y) and D(x, y)
    models.selfcond     the self-conditioned GAN: a conditional GAN on k-means clusters of its images
    models.dcgan
    models.cgan
    models.toy          the mode lab's paper architectures (maxout D, simultaneous updates)
    models.progressive
    models.vaegan
    models              the registry of the models `minigen train` knows
    metrics             NLL, AUROC, imputation errors, mode coverage, FID and score; eval_scores
    apps                what the lecture does with a trained model
    imputation          Metropolis-within-Gibbs and importance-weighted imputation, kNN baseline
    rundir              run directories: config, log, checkpoints, resume
    train               the training loop, run directories, resume
    pretrained          the shipped pretrained weights: packaging a run, loading by name
    autograder          the checks and grader of `minigen assign` (a package)
    assign              a student copy and its autograder: build, self-test, the exercises listed
    gradebook           `minigen grade`: a class's submissions into a CSV gradebook
    health              is my run healthy? its curves against its recipe's band; failures named
    animate             a run's per-epoch sample grids as a GIF
    cli_runs            `minigen check` and `minigen animate`: the CLI commands that read a run folder
    cli_assign          `minigen assign`: the CLI command around assign
    cli_types           argparse types that refuse a bad value with what was expected
    cli                 the `minigen` command
    demo                what the demo scripts share: train through `minigen train`, then report
    __main__            `python -m minigen`
"""
__version__ = "0.1.0"
