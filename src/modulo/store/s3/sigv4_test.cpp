// The SigV4 signer against AWS's published vectors: the Signature Version 4 test suite
// (get-vanilla and its family, region us-east-1, service "service", 2015-08-30T12:36:00Z) and
// the S3 worked examples of "Authenticating Requests: Using the Authorization Header"
// (examplebucket, 2013-05-24T00:00:00Z).
#include "modulo/store/s3/sigv4.h"

#include <gtest/gtest.h>

#include "modulo/store/s3/s3_client.h"

namespace modulo::store::s3 {
namespace {

const Credentials kSuite{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const Credentials kS3Docs{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr std::string_view kSuiteDate = "20150830T123600Z";
constexpr std::string_view kS3Date = "20130524T000000Z";

SignableRequest SuiteGet(std::string path, std::vector<std::pair<std::string, std::string>> query = {}) {
  SignableRequest r;
  r.method = "GET";
  r.path = std::move(path);
  r.query = std::move(query);
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", std::string(kSuiteDate)}};
  r.payload_hash = std::string(kEmptyPayloadHash);
  return r;
}

std::string SuiteSignature(const SignableRequest& r, const Credentials& c = kSuite) {
  return Sign(r, c, "us-east-1", "service", kSuiteDate).signature;
}

TEST(SigV4Test, GetVanillaEveryStep) {
  const auto r = SuiteGet("/");
  std::string signed_headers;
  const std::string canonical = CanonicalRequest(r, &signed_headers);
  EXPECT_EQ(canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(signed_headers, "host;x-amz-date");
  EXPECT_EQ(StringToSign(kSuiteDate, "us-east-1", "service", canonical),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  const Signature s = Sign(r, kSuite, "us-east-1", "service", kSuiteDate);
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Test, GetVanillaFamily) {
  // get-vanilla-query-order-key-case: parameters sorted by name.
  EXPECT_EQ(SuiteSignature(SuiteGet("/", {{"Param2", "value2"}, {"Param1", "value1"}})),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
  // get-unreserved: unreserved characters are not encoded.
  EXPECT_EQ(SuiteSignature(SuiteGet("/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")),
            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
  // get-utf8: the path's UTF-8 bytes are percent-encoded.
  EXPECT_EQ(SuiteSignature(SuiteGet("/\xe1\x88\xb4")),
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
  // get-vanilla-utf8-query: so are the query's.
  EXPECT_EQ(SuiteSignature(SuiteGet("/", {{"\xe1\x88\xb4", "bar"}})),
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
  // post-vanilla.
  auto post = SuiteGet("/");
  post.method = "POST";
  EXPECT_EQ(SuiteSignature(post), "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4Test, GetVanillaWithSessionToken) {
  Credentials c = kSuite;
  c.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
  SignableRequest r;
  r.method = "GET";
  r.path = "/";
  r.headers = {{"Host", "example.amazonaws.com"}};
  r.payload_hash = std::string(kEmptyPayloadHash);
  AddSigningHeaders(r, c, kSuiteDate);
  const Signature s = Sign(r, c, "us-east-1", "service", kSuiteDate);
  EXPECT_EQ(s.signed_headers, "host;x-amz-date;x-amz-security-token");
  EXPECT_EQ(s.signature, "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
}

TEST(SigV4Test, S3GetObjectExample) {
  SignableRequest r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", std::string(kEmptyPayloadHash)},
               {"x-amz-date", std::string(kS3Date)}};
  r.payload_hash = std::string(kEmptyPayloadHash);
  const Signature s = Sign(r, kS3Docs, "us-east-1", "s3", kS3Date);
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, S3PutObjectExampleEncodesTheKey) {
  const std::string body = "Welcome to Amazon S3.";
  const std::string hash = Sha256Hex(body);
  EXPECT_EQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SignableRequest r;
  r.method = "PUT";
  r.path = "/test$file.text";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"x-amz-date", std::string(kS3Date)},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
               {"x-amz-content-sha256", hash}};
  r.payload_hash = hash;
  const Signature s = Sign(r, kS3Docs, "us-east-1", "s3", kS3Date);
  EXPECT_EQ(s.canonical_request.substr(0, s.canonical_request.find('\n', 4)), "PUT\n/test%24file.text");
  EXPECT_EQ(s.signed_headers, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(s.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4Test, S3QueryExamples) {
  auto base = [](std::vector<std::pair<std::string, std::string>> query) {
    SignableRequest r;
    r.method = "GET";
    r.path = "/";
    r.query = std::move(query);
    r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                 {"x-amz-content-sha256", std::string(kEmptyPayloadHash)},
                 {"x-amz-date", std::string(kS3Date)}};
    r.payload_hash = std::string(kEmptyPayloadHash);
    return r;
  };
  // GET Bucket lifecycle: a parameter without a value signs as "lifecycle=".
  EXPECT_EQ(Sign(base({{"lifecycle", ""}}), kS3Docs, "us-east-1", "s3", kS3Date).signature,
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  // GET Bucket (list objects).
  EXPECT_EQ(Sign(base({{"prefix", "J"}, {"max-keys", "2"}}), kS3Docs, "us-east-1", "s3", kS3Date).signature,
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, CanonicalHeadersTrimFoldAndJoin) {
  SignableRequest r;
  r.method = "GET";
  r.path = "/";
  r.headers = {{"My-Header1", "  a   b   c  "}, {"Host", "h"}, {"my-header1", "d"}};
  r.payload_hash = std::string(kUnsignedPayload);
  std::string names;
  const std::string c = CanonicalRequest(r, &names);
  EXPECT_EQ(c, "GET\n/\n\nhost:h\nmy-header1:a b c,d\n\nhost;my-header1\nUNSIGNED-PAYLOAD");
  EXPECT_EQ(names, "host;my-header1");
}

TEST(SigV4Test, UriEncoding) {
  EXPECT_EQ(UriEncode("a b/c+d=e~f_g.h-i", true), "a%20b/c%2Bd%3De~f_g.h-i");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(UriEncode("\xff", false), "%FF");
  EXPECT_EQ(AmzDate(std::chrono::system_clock::from_time_t(1440938160)), "20150830T123600Z");
}

TEST(S3ClientOptionsTest, ValidatesAndBuildsUrls) {
  S3Options o;
  o.endpoint = "http://127.0.0.1:9000/";
  o.bucket = "modulo-blobs";
  o.credentials = {"AK", "SK", ""};
  o.key_prefix = "tenant a/";
  auto c = S3Client::Create(o);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ((*c)->Url("blobs/ab/abc"), "http://127.0.0.1:9000/modulo-blobs/tenant%20a/blobs/ab/abc");
  EXPECT_EQ((*c)->Url(""), "http://127.0.0.1:9000/modulo-blobs");
  o.path_style = false;
  o.endpoint = "https://s3.eu-west-1.amazonaws.com";
  o.key_prefix = "";
  auto v = S3Client::Create(o);
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ((*v)->Url("blobs/ab/abc"), "https://modulo-blobs.s3.eu-west-1.amazonaws.com/blobs/ab/abc");
  EXPECT_EQ((*v)->Url(""), "https://modulo-blobs.s3.eu-west-1.amazonaws.com/");

  auto refused = [&](auto mutate) {
    S3Options bad = o;
    mutate(bad);
    auto r = S3Client::Create(bad);
    return !r && r.error().code() == ErrorCode::kInvalidArgument;
  };
  EXPECT_TRUE(refused([](S3Options& b) { b.endpoint = "ftp://host"; }));
  EXPECT_TRUE(refused([](S3Options& b) { b.endpoint = "http://host/path"; }));
  EXPECT_TRUE(refused([](S3Options& b) { b.endpoint = "http://host:99999"; }));
  EXPECT_TRUE(refused([](S3Options& b) { b.endpoint = "http://user@host"; }));
  EXPECT_TRUE(refused([](S3Options& b) { b.bucket = "Upper"; }));
  EXPECT_TRUE(refused([](S3Options& b) { b.bucket = "ab"; }));
  EXPECT_TRUE(refused([](S3Options& b) { b.bucket = "192.168.1.1"; }));
  EXPECT_TRUE(refused([](S3Options& b) { b.bucket = "a.b"; }));  // dotted + virtual host + https
  EXPECT_TRUE(refused([](S3Options& b) { b.credentials.secret_access_key = ""; }));
  EXPECT_TRUE(refused([](S3Options& b) { b.region = "US East"; }));
  EXPECT_TRUE(refused([](S3Options& b) { b.key_prefix = "/abs"; }));
  EXPECT_TRUE(refused([](S3Options& b) {
    b.endpoint = "http://host";
    b.unsigned_payload = true;
  }));
}

}  // namespace
}  // namespace modulo::store::s3
