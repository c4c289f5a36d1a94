from .io import (atomic_save, atomic_write, check_checkpoint_file, download_checkpoint,
                 load_checkpoint_file)

__all__ = ['atomic_save', 'atomic_write', 'check_checkpoint_file', 'download_checkpoint',
           'load_checkpoint_file']
