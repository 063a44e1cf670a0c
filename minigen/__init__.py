"""minigen: deep generative models from scratch in NumPy + autograd.

Modules, from the bottom up (each imports only the ones before it):
    ops         convolutions and stable logistic functions as autograd primitives
    init, nn    initialisers; layers as (init, apply) pairs, Sequential
    optim       SGD, RMSprop, Adam, updating parameters in place
    data        MNIST (checksummed), 2-D mixtures, minibatches
    train       the training loop
    checkpoint  parameters to .npz and back, atomically, without pickle
    models      one module per model family
"""
__version__ = "0.1.0"
