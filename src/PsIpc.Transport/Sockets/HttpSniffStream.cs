using System;
using System.IO;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// A read-through stream for the server side of a LengthPrefixed connection: the first read waits for
    /// four bytes and fails (IOException) when they look like HTTP, so StreamConnection, which reads the
    /// stream, closes the connection without answering. After that it only passes reads and writes on.
    /// </summary>
    internal sealed class HttpSniffStream : Stream
    {
        private readonly Stream _inner;
        private bool _checked;

        public HttpSniffStream(Stream inner) => _inner = inner;

        /// <summary>Set when the connection was refused because it looked like HTTP.</summary>
        public bool SawHttp { get; private set; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = _inner.Read(buffer, offset, count);
            if (_checked || n == 0) return n;
            return Check(buffer, offset, count, n, more => _inner.Read(buffer, offset + more, count - more));
        }

        // Asynchronous too (the TLS and shared-secret handshakes read this way): no thread waits on a slow client.
        public override async System.Threading.Tasks.Task<int> ReadAsync(byte[] buffer, int offset, int count, System.Threading.CancellationToken cancellationToken)
        {
            int n = await _inner.ReadAsync(buffer, offset, count, cancellationToken).ConfigureAwait(false);
            if (_checked || n == 0) return n;
            while (n < HttpSniffer.PrefixLength && n < count && HttpSniffer.CouldBecomeHttp(buffer, offset, n))
            {
                int more = await _inner.ReadAsync(buffer, offset + n, count - n, cancellationToken).ConfigureAwait(false);
                if (more == 0) break;
                n += more;
            }
            return Check(buffer, offset, count, n, null);
        }

        public override System.Threading.Tasks.Task WriteAsync(byte[] buffer, int offset, int count, System.Threading.CancellationToken cancellationToken) =>
            _inner.WriteAsync(buffer, offset, count, cancellationToken);

        public override System.Threading.Tasks.Task FlushAsync(System.Threading.CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

        // The first read: wait for four bytes while what came could still be the start of HTTP (readMore given),
        // then refuse HTTP. The first read returns what one write sent, so a Raw message is not cut by this.
        private int Check(byte[] buffer, int offset, int count, int n, Func<int, int>? readMore)
        {
            while (readMore != null && n < HttpSniffer.PrefixLength && n < count && HttpSniffer.CouldBecomeHttp(buffer, offset, n))
            {
                int more = readMore(n);
                if (more == 0) break;
                n += more;
            }
            _checked = true;
            if (HttpSniffer.LooksLikeHttp(buffer, offset, n))
            {
                SawHttp = true;
                throw new IOException("the client sent what looks like HTTP, which PsIpc sockets do not speak");
            }
            return n;
        }

        public override void Write(byte[] buffer, int offset, int count) => _inner.Write(buffer, offset, count);
        public override void Flush() => _inner.Flush();
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) _inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
