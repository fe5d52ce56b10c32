// CloudFront Function (viewer request, runtime cloudfront-js-2.0) for sizer's f/auto behind CloudFront:
// reduces the browser's Accept header to sizer's token in the `sizer-accept` header, which the cache
// policy keys on (see the README, "f/auto behind CloudFront"). Same rule and order as sizer's default
// output.auto_formats = ["avif", "webp"]: only explicit image/avif and image/webp count, and AVIF is
// chosen only with WebP, which sizer gives animated originals instead. tests/it/cloudfront.rs runs this
// file under node and checks that sizer serves the same format for the token as for the Accept header.
function handler(event) {
  var request = event.request;
  var accept = request.headers['accept'] ? request.headers['accept'].value : '';
  var listed = function (type) {
    return accept.split(',').some(function (item) {
      return item.split(';')[0].trim().toLowerCase() === type;
    });
  };
  var webp = listed('image/webp');
  var token = webp && listed('image/avif') ? 'avif' : webp ? 'webp' : 'none';
  request.headers['sizer-accept'] = { value: token };
  return request;
}
